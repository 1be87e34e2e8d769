/*
 * A speed reference for fastbce's benchmark: the BCE-with-logits loss as a
 * plain C loop that gcc vectorizes with glibc's libmvec (vector expf/exp and
 * log1pf/log1p), parallelized with OpenMP, float64 accumulation. Built by
 * benches/bench.py when a C compiler is present:
 *
 *   gcc -O3 -march=native -ffast-math -fopenmp -mprefer-vector-width=512 \
 *       -fPIC -shared -o roofline.so roofline.c -lmvec -lm
 *
 * It computes loss = (1 - y) * x + (1 + (p - 1) * y) * softplus(-x), which
 * cancels for soft labels at large |x| and relies on -ffast-math: a bound on
 * speed, not an accurate implementation.
 */
#include <math.h>
#include <stdint.h>

#define LOSS(T, EXP, LOG1P, FABS, FMAX, x, y, p) \
    (((T)1 - (y)) * (x) + ((T)1 + ((p) - (T)1) * (y)) * (LOG1P(EXP(-FABS(x))) + FMAX(-(x), (T)0)))

#define KERNELS(SUF, T, TY, EXP, LOG1P, FABS, FMAX)                                     \
double mean_##SUF(const T *restrict x, const TY *restrict y, long n, int nt) {          \
    double s = 0.0;                                                                     \
    _Pragma("omp parallel for simd reduction(+:s) schedule(static) num_threads(nt)")    \
    for (long i = 0; i < n; i++) s += (double)LOSS(T, EXP, LOG1P, FABS, FMAX, x[i], (T)y[i], (T)1); \
    return s / (double)n;                                                               \
}                                                                                       \
void none_##SUF(const T *restrict x, const TY *restrict y, T *restrict out, long n, int nt) { \
    _Pragma("omp parallel for simd schedule(static) num_threads(nt)")                   \
    for (long i = 0; i < n; i++) out[i] = LOSS(T, EXP, LOG1P, FABS, FMAX, x[i], (T)y[i], (T)1); \
}                                                                                       \
double value_and_grad_##SUF(const T *restrict x, const TY *restrict y, T *restrict grad, long n, int nt) { \
    double s = 0.0;                                                                     \
    const T inv_n = (T)(1.0 / (double)n);                                               \
    _Pragma("omp parallel for simd reduction(+:s) schedule(static) num_threads(nt)")    \
    for (long i = 0; i < n; i++) {                                                      \
        T xi = x[i], yi = (T)y[i];                                                      \
        T e = EXP(-FABS(xi));                                                           \
        T r = (T)1 / ((T)1 + e);                                                        \
        T sig = xi >= (T)0 ? r : e * r;                                                 \
        grad[i] = (sig - yi) * inv_n;                                                   \
        s += (double)(((T)1 - yi) * xi + LOG1P(e) + FMAX(-xi, (T)0));                   \
    }                                                                                   \
    return s / (double)n;                                                               \
}                                                                                       \
double pos_weight_##SUF(const T *restrict x, const TY *restrict y, const T *restrict p, \
                        long rows, long cols, int nt) {                                 \
    double s = 0.0;                                                                     \
    _Pragma("omp parallel for reduction(+:s) schedule(static) num_threads(nt)")         \
    for (long r = 0; r < rows; r++) {                                                   \
        double row = 0.0;                                                               \
        _Pragma("omp simd reduction(+:row)")                                            \
        for (long c = 0; c < cols; c++)                                                 \
            row += (double)LOSS(T, EXP, LOG1P, FABS, FMAX, x[r * cols + c], (T)y[r * cols + c], p[c]); \
        s += row;                                                                       \
    }                                                                                   \
    return s / (double)(rows * cols);                                                   \
}

KERNELS(f32, float, float, expf, log1pf, fabsf, fmaxf)
KERNELS(f64, double, double, exp, log1p, fabs, fmax)
KERNELS(f32_u8, float, uint8_t, expf, log1pf, fabsf, fmaxf)
KERNELS(f64_u8, double, uint8_t, exp, log1p, fabs, fmax)
