#pragma once
/// \file
/// Eigen's dense decompositions that every projector runs on small host matrices in double
/// (symmetric eigen-decompositions, Jacobi SVDs, Cholesky factors), and the switch that compiles
/// them in one translation unit instead of in every one.
///
/// They are the largest single cost of a translation unit that uses a projector: a trainer file
/// that includes `<ogpsa/ogpsa.hpp>` and instantiates one `exact_svd` projector spends about a
/// third of its compile time and a fifth of its memory instantiating and optimizing them. Define
/// `OGPSA_EXTERN_TEMPLATES` in every translation unit of a program (a compile definition of the
/// target) and they are only declared there (`extern template`); include
/// `<ogpsa/instantiate.hpp>` in exactly one source file of the program, which instantiates them.
/// The instantiations are compiled with the program's own flags, so there is no prebuilt binary
/// whose Eigen configuration (alignment, vectorization) could differ from the program's. Without the macro nothing changes:
/// the library is header-only, each translation unit instantiating what it uses.

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>

/// The instantiations, each preceded by `Prefix` (`extern template` or `template`).
#define OGPSA_DETAIL_DENSE_INSTANTIATIONS(Prefix)                                                          \
  Prefix class Eigen::JacobiSVD<Eigen::MatrixXd>;                                                          \
  Prefix class Eigen::ColPivHouseholderQR<Eigen::MatrixXd>;                                                \
  Prefix class Eigen::LLT<Eigen::MatrixXd>;                                                                \
  Prefix class Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>;                                             \
  Prefix Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>& Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>::  \
      compute<Eigen::MatrixXd>(const Eigen::EigenBase<Eigen::MatrixXd>&, int);                             \
  Prefix Eigen::LLT<Eigen::MatrixXd>& Eigen::LLT<Eigen::MatrixXd>::compute<Eigen::MatrixXd>(              \
      const Eigen::EigenBase<Eigen::MatrixXd>&);

#ifdef OGPSA_EXTERN_TEMPLATES
OGPSA_DETAIL_DENSE_INSTANTIATIONS(extern template)
#endif
