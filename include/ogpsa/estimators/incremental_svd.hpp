#pragma once
/// \file
/// The former name of <ogpsa/estimators/frequent_directions.hpp>: the estimator is Frequent
/// Directions, not an incremental SVD, and is now `ogpsa::frequent_directions`.

#include "ogpsa/estimators/frequent_directions.hpp"
