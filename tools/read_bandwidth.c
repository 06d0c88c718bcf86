/* Read bandwidth of one core by working-set size: the roofline behind the B=1 floors in
 * README.md ("Where the hardware sets the limit"). Sums 64-byte vectors of a buffer
 * again and again; best of 5 passes per size.
 *
 *   cc -O2 -mavx512f tools/read_bandwidth.c -o /tmp/read_bandwidth && /tmp/read_bandwidth
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const size_t sizes[] = {16 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 8 << 20, 64 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        const size_t n = sizes[s] / sizeof(float);
        float* a = aligned_alloc(64, sizes[s]);
        for (size_t i = 0; i < n; ++i) a[i] = 1e-7f * (float)i;
        size_t reps = (size_t)(4e9 / (double)sizes[s]);
        if (reps < 3) reps = 3;
        double best = 1e30;
        float sink = 0;
        for (int pass = 0; pass < 5; ++pass) {
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            const double t0 = now();
            for (size_t r = 0; r < reps; ++r)
                for (size_t i = 0; i < n; i += 64) {
                    s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
                    s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
                    s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
                    s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
                }
            const double t = now() - t0;
            if (t < best) best = t;
            sink += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
        }
        printf("%8zu KiB: %6.1f GB/s%s\n", sizes[s] >> 10, (double)reps * sizes[s] / best / 1e9,
               sink == 12345.f ? " " : "");
        free(a);
    }
    return 0;
}
