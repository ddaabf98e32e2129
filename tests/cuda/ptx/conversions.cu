// Conversions between float and the 16-bit element types must compile to the hardware's cvt
// instructions: an integer emulation costs tens of instructions per element, which makes
// bandwidth-bound kernels (the flat projection of fp16 gradients) ALU-bound. Each kernel does one
// conversion, so its count is the conversion's cost plus about 5 instructions (two parameter
// loads, an address conversion, the store, the return); the NaN, which the hardware makes
// canonical, takes a few more to keep the host's bits. check_ptx.cmake checks the lines below.
//
// expect: float_to_float16 at most 20 instructions, with cvt.rn.f16.f32
// expect: float16_to_float at most 20 instructions, with cvt.f32.f16
// expect: float_to_bfloat16 at most 16 instructions, with cvt.rn.bf16.f32
// expect: bfloat16_to_float at most 8 instructions, with shl.b32
// expect: double_to_float16 at most 20 instructions, with cvt.rn.f32.f64
#include <ogpsa/cuda/detail/element_cast.hpp>

using ogpsa::bfloat16;
using ogpsa::float16;
using ogpsa::cuda::detail::element_cast;

extern "C" __global__ void float_to_float16(float in, float16* out) { *out = element_cast<float16>(in); }
extern "C" __global__ void float16_to_float(float16 in, float* out) { *out = element_cast<float>(in); }
extern "C" __global__ void float_to_bfloat16(float in, bfloat16* out) { *out = element_cast<bfloat16>(in); }
extern "C" __global__ void bfloat16_to_float(bfloat16 in, float* out) { *out = element_cast<float>(in); }
extern "C" __global__ void double_to_float16(double in, float16* out) { *out = element_cast<float16>(in); }
