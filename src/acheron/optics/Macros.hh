// Portability macros for per-photon code that must also compile for CUDA.
#pragma once

#if defined(__CUDACC__)
#define ACHERON_FUNCTION __host__ __device__
#else
#define ACHERON_FUNCTION
#endif

#define ACHERON_FORCEINLINE inline __attribute__((always_inline))
