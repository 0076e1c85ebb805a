// Full-batch gradient descent on X = left @ C[L-1] @ ... @ C[0] @ right^T, touching only the observed entries.
// One pass over the entries in CSR (row-major) order gives the residual, the loss, G right and G^T A together.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>
#include <atomic>
#include <sched.h>

// A barrier that spins briefly, then yields the core: on a busy machine a waiting thread must not burn the time
// slice that the thread it waits for needs. (OpenMP's own barrier spins far longer: several times slower steps
// under load.)
struct Barrier {
  std::atomic<int> count{0}, phase{0};
  int threads = 1;
  void wait() {
    const int p = phase.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == threads - 1) {
      count.store(0, std::memory_order_relaxed);
      phase.store(p + 1, std::memory_order_release);
      return;
    }
    for (int spin = 0; phase.load(std::memory_order_acquire) == p; spin++)
      if (spin > 100) sched_yield();
  }
};
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num() { return 0; }
static int omp_get_num_threads() { return 1; }
#endif

template <typename T>  // out = op(a) @ op(b) for w x w row-major matrices
static void matmul(const T* a, const T* b, T* out, int64_t w, bool ta = false, bool tb = false) {
  for (int64_t i = 0; i < w; i++)
    for (int64_t j = 0; j < w; j++) {
      T s = 0;
      for (int64_t k = 0; k < w; k++) s += (ta ? a[k * w + i] : a[i * w + k]) * (tb ? b[j * w + k] : b[k * w + j]);
      out[i * w + j] = s;
    }
}

template <typename T>
static void set_identity(T* a, int64_t w) {
  std::fill(a, a + w * w, T(0));
  for (int64_t c = 0; c < w; c++) a[c * w + c] = 1;
}

// Row arithmetic at a width N known at compile time, in whole vectors (GCC and Clang vector extensions): the widest
// chunk of at most 64 bytes that fits, then the rest the same way. Written as loops over the lanes, the compiler made the
// dot product a chain of N scalar multiply-adds and the width's remainder scalar: the pass over the entries took 1.3x
// as long at width 10 (d = 1000, one thread).
template <typename T, int BYTES>
struct Vec {
  typedef T type __attribute__((vector_size(BYTES)));
  typedef T unaligned __attribute__((vector_size(BYTES), aligned(sizeof(T))));  // rows are only T-aligned
};

template <typename T, int TO, int BYTES, int... I>  // v's lanes added in halves down to TO bytes; I = 0 .. lanes / 2 - 1
static inline typename Vec<T, TO>::type fold(typename Vec<T, BYTES>::type v, std::integer_sequence<int, I...>) {
  if constexpr (BYTES == TO) return v;
  else {
    constexpr int HALF = sizeof...(I);
    typename Vec<T, BYTES / 2>::type s = __builtin_shufflevector(v, v, I...) + __builtin_shufflevector(v, v, (I + HALF)...);
    return fold<T, TO, BYTES / 2>(s, std::make_integer_sequence<int, HALF / 2>{});
  }
}

template <typename T, int N>
struct RowOps {
  static constexpr int fit(int bytes) { return bytes >= 64 ? 64 : bytes >= 32 ? 32 : bytes >= 16 ? 16 : bytes >= 8 ? 8 : 4; }
  static constexpr int BYTES = fit(N * (int)sizeof(T)), LANES = BYTES / (int)sizeof(T);  // the first chunk
  static constexpr int PAIR = 16 / (int)sizeof(T), PAIRED = N / PAIR * PAIR;  // lanes in whole 16-byte pieces
  using vec = typename Vec<T, BYTES>::type;
  using unaligned = typename Vec<T, BYTES>::unaligned;  // loads and stores typed as T: memcpy's may alias anything
  static vec load(const T* p) { return *(const unaligned*)p; }
  static typename Vec<T, 16>::type folded_dot(const T* a, const T* b) {  // N a multiple of PAIR: a . b in 16 bytes
    auto f = fold<T, 16, BYTES>(load(a) * load(b), std::make_integer_sequence<int, LANES / 2>{});
    if constexpr (N > LANES) f += RowOps<T, N - LANES>::folded_dot(a + LANES, b + LANES);
    return f;
  }
  static T dot(const T* a, const T* b) {  // a . b
    T r = 0;
    if constexpr (PAIRED > 0) {
      auto f = fold<T, 8, 16>(RowOps<T, PAIRED>::folded_dot(a, b), std::make_integer_sequence<int, PAIR / 2>{});
      r = sizeof(T) == 8 ? f[0] : f[0] + f[1];
    }
    for (int c = PAIRED; c < N; c++) r = c ? r + a[c] * b[c] : a[c] * b[c];  // not 0 + a[0] b[0]: it is not folded
    return r;
  }
  static void axpy(T g, const T* x, T* y) {  // y += g x
    if constexpr (LANES == 1) y[0] += g * x[0];
    else *(unaligned*)y = load(y) + g * load(x);
    if constexpr (N > LANES) RowOps<T, N - LANES>::axpy(g, x + LANES, y + LANES);
  }
};

// The sums of G vectors' lanes at once, G = the lanes of a 64-byte vector: lane q of the result is the sum of p[q]'s
// lanes. Each level adds neighbouring blocks of B lanes of two vectors into one (two shuffles and an add), so G sums
// take G - 1 adds instead of G horizontal sums.
// One level: block m of the sum is blocks 2(m / 2) and 2(m / 2) + 1 of x (m even) or of y (m odd), added.
template <typename T, int B, int... Q>
static inline typename Vec<T, 64>::type pair_sum(typename Vec<T, 64>::type x, typename Vec<T, 64>::type y,
                                                 std::integer_sequence<int, Q...>) {
  constexpr int G = sizeof...(Q);
  return __builtin_shufflevector(x, y, ((Q / B) % 2 * G + (Q / B / 2) * 2 * B + Q % B)...) +
         __builtin_shufflevector(x, y, ((Q / B) % 2 * G + ((Q / B / 2) * 2 + 1) * B + Q % B)...);
}

template <typename T, int B = 1>  // p: G vectors, overwritten
static inline typename Vec<T, 64>::type lane_sums(typename Vec<T, 64>::type* p) {
  constexpr int G = 64 / (int)sizeof(T);
  if constexpr (B == G) return p[0];
  else {
    for (int k = 0; k < G / B / 2; k++)
      p[k] = pair_sum<T, B>(p[2 * k], p[2 * k + 1], std::make_integer_sequence<int, G>{});
    return lane_sums<T, 2 * B>(p);
  }
}

template <typename T, int WIDTH>  // a . b over w entries; WIDTH = 0: any width
static inline T row_dot(const T* __restrict a, const T* __restrict b, int64_t w) {
  if constexpr (WIDTH > 0) return RowOps<T, WIDTH>::dot(a, b);
  else {
    T r = 0;
    for (int64_t c = 0; c < w; c++) r += a[c] * b[c];
    return r;
  }
}

template <typename T, int WIDTH>  // y += g x over w entries; WIDTH = 0: any width
static inline void row_axpy(T g, const T* __restrict x, T* __restrict y, int64_t w) {
  if constexpr (WIDTH > 0) RowOps<T, WIDTH>::axpy(g, x, y);
  else for (int64_t c = 0; c < w; c++) y[c] += g * x[c];
}

// The entries [begin, end) of one row, G = 64 / sizeof(T) at a time while G remain (a compile-time width of at least
// G), as sweep_row below: the G residuals come from G vectors of products summed by `lane_sums`, instead of one
// horizontal sum each, and the residual, loss and gradient arithmetic runs on the G entries at once. A width that is
// not a multiple of G ends with a 64-byte load overlapping the one before, against A's row masked to the lanes not yet
// counted. Within the caches the pass over the entries took 0.74 against 0.81 ms (width 10, float64), 0.39 against 0.50
// (width 8) and 1.03 against 1.23 (width 20), d = 1000, one thread; past them (50,000 x 50,000, 5 million entries,
// prefetching) 7.7 against 6.3 ns an entry, so large matrices go one entry at a time.
// Returns the first entry left and adds the rows' r^2 to `loss`.
template <typename T, int WIDTH>
static inline int64_t sweep_groups(int64_t begin, int64_t end, const int32_t* col, const T* y,
                                   const T* __restrict a, const T* __restrict right, T scale, T* __restrict gr,
                                   T* __restrict scatter, double* loss) {
  constexpr int G = 64 / (int)sizeof(T), FULL = WIDTH / G, REST = WIDTH % G;
  using V = typename Vec<T, 64>::type;
  using U = typename Vec<T, 64>::unaligned;
  using Doubles = typename Vec<double, 64>::type;
  V a_chunk[FULL], a_rest = {};
  for (int c = 0; c < FULL; c++) a_chunk[c] = *(const U*)(a + c * G);
  for (int q = G - REST; q < G; q++) a_rest[q] = a[WIDTH - G + q];
  Doubles loss_lanes = {};
  int64_t e = begin;
  for (; e + G <= end; e += G) {
    const T* rows[G];
    V p[G];
    for (int q = 0; q < G; q++) {
      rows[q] = right + (int64_t)col[e + q] * WIDTH;
      p[q] = a_chunk[0] * *(const U*)rows[q];
      for (int c = 1; c < FULL; c++) p[q] += a_chunk[c] * *(const U*)(rows[q] + c * G);
      if constexpr (REST > 0) p[q] += a_rest * *(const U*)(rows[q] + WIDTH - G);
    }
    const V r = lane_sums<T>(p) - *(const U*)(y + e);
    const V g = scale * r;  // dLoss / dX_ij
    if constexpr (sizeof(T) == 8) loss_lanes += r * r;
    else {  // float's r^2 summed in double, as one entry at a time does
      const auto lo = __builtin_convertvector(__builtin_shufflevector(r, r, 0, 1, 2, 3, 4, 5, 6, 7), Doubles);
      const auto hi = __builtin_convertvector(__builtin_shufflevector(r, r, 8, 9, 10, 11, 12, 13, 14, 15), Doubles);
      loss_lanes += lo * lo + hi * hi;
    }
    for (int q = 0; q < G; q++) {
      row_axpy<T, WIDTH>(g[q], rows[q], gr, WIDTH);
      if (scatter) row_axpy<T, WIDTH>(g[q], a, scatter + (int64_t)col[e + q] * WIDTH, WIDTH);
    }
  }
  for (int q = 0; q < 64 / (int)sizeof(double); q++) *loss += loss_lanes[q];
  return e;
}

// One row i of the pass over the entries: A's row a = left_i @ M, then over the row's entries e in [begin, end) the
// residual r, G right's row (written to gr_out, added into K as left_i^T gr) and, when `scatter` is given, G^T A
// (g a added to scatter's row col[e]); returns the row's sum of r^2.
// A large matrix's `right` and G^T A do not fit the caches, and each entry reads a row of each: with PREFETCH they
// are fetched 16 entries ahead (`fetch_ahead`). Within the caches that made steps ~13% slower (d = 300 and 1000, one
// thread), so it is off there, as a compile-time flag: a runtime test in the loop cost as much.
template <typename T, int WIDTH, bool PREFETCH>
static inline double sweep_row(int64_t w_, int64_t begin, int64_t end, int64_t nnz, const int32_t* col, const T* y,
                               const T* __restrict li, const T* __restrict M, const T* __restrict right, T scale,
                               T* __restrict a, T* __restrict gr, T* __restrict gr_out, T* __restrict K,
                               T* __restrict scatter) {
  const int64_t w = WIDTH ? WIDTH : w_;
  double loss = 0;  // local: a reference could alias the T* outputs and be stored at every entry
  T fixed_gr[WIDTH ? WIDTH : 1];  // a local row, which no output can alias, is kept in registers
  if (WIDTH) gr = fixed_gr;
  for (int64_t c = 0; c < w; c++) {
    T v = 0;
    for (int64_t k = 0; k < w; k++) v += li[k] * M[k * w + c];
    a[c] = v; gr[c] = 0;
  }
  int64_t e = begin;
  if constexpr (!PREFETCH && WIDTH * sizeof(T) >= 64)
    e = sweep_groups<T, WIDTH>(begin, end, col, y, a, right, scale, gr, scatter, &loss);
  for (; e < end; e++) {
    if (PREFETCH && e + 16 < nnz) {
      __builtin_prefetch(right + (int64_t)col[e + 16] * w);
      if (scatter) __builtin_prefetch(scatter + (int64_t)col[e + 16] * w, 1);
    }
    const T* __restrict rj = right + (int64_t)col[e] * w;
    const T r = row_dot<T, WIDTH>(a, rj, w) - y[e];
    loss += (double)r * r;
    const T g = scale * r;  // dLoss / dX_ij
    row_axpy<T, WIDTH>(g, rj, gr, w);
    if (scatter) row_axpy<T, WIDTH>(g, a, scatter + (int64_t)col[e] * w, w);
  }
  std::memcpy(gr_out, gr, w * sizeof(T));
  for (int64_t k = 0; k < w; k++)
    for (int64_t c = 0; c < w; c++) K[k * w + c] += li[k] * gr[c];
  return loss;
}

template <typename T>
static bool fetch_ahead(int64_t n, int64_t w) { return n * w * (int64_t)sizeof(T) > (1 << 20); }  // past an L2 cache

// sweep_row's rows of scratch. At a compile-time width, A's row is on the stack and G right's row is a local array of
// sweep_row's own (so registers hold it: gr stays null here); at any other width both are on the heap.
template <typename T, int WIDTH>
struct RowScratch {
  std::vector<T> a_heap, gr_heap;
  T a_fixed[WIDTH ? WIDTH : 1];
  T* a;
  T* gr;
  explicit RowScratch(int64_t w)
      : a_heap(WIDTH ? 0 : w), gr_heap(WIDTH ? 0 : w), a(WIDTH ? a_fixed : a_heap.data()),
        gr(WIDTH ? nullptr : gr_heap.data()) {}
};

// Up to max_steps steps. losses[s] = train loss (0.5 scale sum r^2) of the state before step s. Stops without
// stepping at a state whose loss is < tol (*status = 1) or not finite or > blowup (*status = 2); returns the steps
// taken.
// The rows are cut into `parts` blocks of about equal entries, each with its own partial sums, added in block order:
// any number of threads (each takes every threads-th block) gives bit-for-bit the same steps.
// WIDTH > 0 is the width as a compile-time constant (unrolled, vectorised inner loops); WIDTH = 0 handles any width.
template <typename T, int WIDTH>
static int64_t run(int64_t m, int64_t n, int64_t w_, int64_t L, const int64_t* crow, const int32_t* col, const T* y,
                   T* left, T* cores, T* right, double scale, double lr, double lr_outer, int64_t max_steps,
                   double tol, double blowup, double* losses, int64_t* status, int parts, int threads) {
#ifndef _OPENMP
  threads = 1;
#endif
  threads = std::max(1, std::min(threads, parts));
  const int64_t w = WIDTH ? WIDTH : w_, ww = w * w, nnz = crow[m];
  const bool outer = lr_outer != 0;  // gamma = 0: the outer factors are frozen, G^T A is not needed
  std::vector<T> GR(m * w), scatter(outer ? (size_t)parts * n * w : 0, T(0)), part_K((size_t)parts * ww);
  std::vector<double> part_loss(parts * 8);  // 8 apart: no two threads write one cache line
  std::vector<int64_t> row_bounds(parts + 1);
  for (int p = 0; p <= parts; p++)  // block p: rows holding about nnz / parts entries
    row_bounds[p] = p == parts ? m : std::lower_bound(crow, crow + m, nnz * p / parts) - crow;
  int64_t taken = max_steps;
  *status = 0;
  Barrier barrier;
  #pragma omp parallel num_threads(threads)
  {
    #pragma omp single
    barrier.threads = threads = omp_get_num_threads();  // the team OpenMP gave, which may be smaller than asked
    const int t = omp_get_thread_num();
    // Each thread keeps its own copy of the tiny cores and their products: no thread waits for another to make them.
    std::vector<T> C(cores, cores + L * ww), below((L + 1) * ww), above((L + 1) * ww);
    std::vector<T> K(ww), tmp(ww), grads(L * ww + 1);
    RowScratch<T, WIDTH> row(w);
    const auto sweep = fetch_ahead<T>(n, w) ? sweep_row<T, WIDTH, true> : sweep_row<T, WIDTH, false>;
    for (int64_t s = 0; s < max_steps; s++) {
      // below[i] = C[i-1] ... C[0] (below[0] = I, below[L] = M); above[i] = C[L-1] ... C[i+1] (above[L-1] = I)
      set_identity(below.data(), w);
      for (int64_t i = 0; i < L; i++) matmul(C.data() + i * ww, below.data() + i * ww, below.data() + (i + 1) * ww, w);
      if (L > 0) set_identity(above.data() + (L - 1) * ww, w);
      for (int64_t i = L - 2; i >= 0; i--)
        matmul(above.data() + (i + 1) * ww, C.data() + (i + 1) * ww, above.data() + i * ww, w);
      const T* __restrict M = below.data() + L * ww;
      for (int p = t; p < parts; p += threads) {
      T* __restrict my_scatter = outer ? scatter.data() + (size_t)p * n * w : nullptr;  // block p's part of G^T A
      T* __restrict my_K = part_K.data() + (size_t)p * ww;                             // and of left^T G right
      double loss = 0;
      std::fill(my_K, my_K + ww, T(0));
      // Zeroed here, by the thread that fills it, not in the update of `right` (where each thread reads every block's
      // part for its columns): the lines stay in this core's cache. Two threads' steps took 0.53 against 0.57 and 0.62
      // against 0.67 ms (medians of 30 alternated calls, d = 1000); one thread's the same.
      if (outer) std::fill(my_scatter, my_scatter + n * w, T(0));
      for (int64_t i = row_bounds[p]; i < row_bounds[p + 1]; i++)
        loss += sweep(w, crow[i], crow[i + 1], nnz, col, y, left + i * w, M, right, (T)scale, row.a, row.gr,
                      GR.data() + i * w, my_K, my_scatter);
      part_loss[p * 8] = loss;
      }
      barrier.wait();
      double total = 0;  // every thread adds the same numbers in the same order, so all take the same decision
      for (int q = 0; q < parts; q++) total += part_loss[q * 8];
      total *= 0.5 * scale;
      const int stop = !(std::isfinite(total) && total <= blowup) ? 2 : total < tol ? 1 : 0;
      if (t == 0) losses[s] = total;
      if (stop) {
        if (t == 0) { *status = stop; taken = s; }
        break;
      }
      std::fill(K.begin(), K.end(), T(0));
      for (int q = 0; q < parts; q++) for (int64_t c = 0; c < ww; c++) K[c] += part_K[(size_t)q * ww + c];
      for (int64_t i = 0; i < L; i++) {  // grad C_i = above_i^T K below_i^T, all from the cores before the step
        matmul(above.data() + i * ww, K.data(), tmp.data(), w, true, false);
        matmul(tmp.data(), below.data() + i * ww, grads.data() + i * ww, w, false, true);
      }
      for (int64_t c = 0; c < L * ww; c++) C[c] -= (T)lr * grads[c];
      if (outer) {
        for (int p = t; p < parts; p += threads)
        for (int64_t i = row_bounds[p]; i < row_bounds[p + 1]; i++) {  // left -= lr_outer (G right) M^T, own blocks
          const T* __restrict g = GR.data() + i * w;
          T* __restrict li = left + i * w;
          for (int64_t k = 0; k < w; k++) li[k] -= (T)lr_outer * row_dot<T, WIDTH>(g, M + k * w, w);
        }
        // right -= lr_outer G^T A, all blocks' parts
        for (int64_t j = n * t / threads; j < n * (t + 1) / threads; j++) {
          T* __restrict rj = right + j * w;
          for (int q = 0; q < parts; q++) {
            T* __restrict sj = scatter.data() + (size_t)q * n * w + j * w;
            for (int64_t c = 0; c < w; c++) rj[c] -= (T)lr_outer * sj[c];
          }
        }
      }
      barrier.wait();
    }
    if (t == 0) std::copy(C.begin(), C.end(), cores);
  }
  return taken;
}

// One pass over the entries of a block of rows, without stepping (a distributed run's local work): returns the sum of
// squared residuals and writes G right (m x w), left^T G right (w x w) and, when `scatter` is given, G^T A (n x w),
// A = left @ M. The processes sum K, G^T A and the loss, then step.
template <typename T, int WIDTH>
static double pass(int64_t m, int64_t n, int64_t w_, const int64_t* crow, const int32_t* col, const T* y,
                   const T* left, const T* M, const T* right, double scale, T* GR, T* K, T* scatter) {
  const int64_t w = WIDTH ? WIDTH : w_;
  std::fill(K, K + w * w, T(0));
  if (scatter) std::fill(scatter, scatter + n * w, T(0));
  RowScratch<T, WIDTH> row(w);
  double loss = 0;
  const auto sweep = fetch_ahead<T>(n, w) ? sweep_row<T, WIDTH, true> : sweep_row<T, WIDTH, false>;
  for (int64_t i = 0; i < m; i++)
    loss += sweep(w, crow[i], crow[i + 1], crow[m], col, y, left + i * w, M, right, (T)scale, row.a, row.gr, GR + i * w,
                  K, scatter);
  return loss;
}

// The widths compiled as constants, for `run` and `pass` alike: 2k for the rank bounds k = 1..10 and 16. Any other
// width runs the loops written for any width, ~3x slower.
#define DEEPLORA_COMPILED_WIDTHS(CASE) CASE(2) CASE(4) CASE(6) CASE(8) CASE(10) CASE(12) CASE(14) CASE(16) CASE(18) \
                                       CASE(20) CASE(32)

#define DEEPLORA_ARGS m, n, w, L, crow, col, y, left, cores, right, scale, lr, lr_outer, max_steps, tol, blowup, \
                      losses, status, parts, threads
#define DEEPLORA_WIDTH(W) case W: return run<T, W>(DEEPLORA_ARGS);
template <typename T>
static int64_t dispatch(int64_t m, int64_t n, int64_t w, int64_t L, const int64_t* crow, const int32_t* col, const T* y,
                        T* left, T* cores, T* right, double scale, double lr, double lr_outer, int64_t max_steps,
                        double tol, double blowup, double* losses, int64_t* status, int parts, int threads) {
  switch (w) {
    DEEPLORA_COMPILED_WIDTHS(DEEPLORA_WIDTH)
    default: return run<T, 0>(DEEPLORA_ARGS);
  }
}

#define DEEPLORA_EXPORT(NAME, T) \
  extern "C" int64_t NAME(int64_t m, int64_t n, int64_t w, int64_t L, const int64_t* crow, const int32_t* col, \
                          const T* y, \
                          T* left, T* cores, T* right, double scale, double lr, double lr_outer, int64_t max_steps, \
                          double tol, double blowup, double* losses, int64_t* status, int parts, int threads) { \
    return dispatch<T>(DEEPLORA_ARGS); }
DEEPLORA_EXPORT(fused_gd_float64, double)
DEEPLORA_EXPORT(fused_gd_float32, float)

#define DEEPLORA_PASS_ARGS m, n, w, crow, col, y, left, M, right, scale, GR, K, scatter
#define DEEPLORA_PASS_WIDTH(W) case W: return pass<T, W>(DEEPLORA_PASS_ARGS);
template <typename T>
static double dispatch_pass(int64_t m, int64_t n, int64_t w, const int64_t* crow, const int32_t* col, const T* y,
                            const T* left, const T* M, const T* right, double scale, T* GR, T* K, T* scatter) {
  switch (w) {
    DEEPLORA_COMPILED_WIDTHS(DEEPLORA_PASS_WIDTH)
    default: return pass<T, 0>(DEEPLORA_PASS_ARGS);
  }
}

#define DEEPLORA_EXPORT_PASS(NAME, T) \
  extern "C" double NAME(int64_t m, int64_t n, int64_t w, const int64_t* crow, const int32_t* col, const T* y, \
                         const T* left, const T* M, const T* right, double scale, T* GR, T* K, T* scatter) { \
    return dispatch_pass<T>(DEEPLORA_PASS_ARGS); }
DEEPLORA_EXPORT_PASS(fused_pass_float64, double)
DEEPLORA_EXPORT_PASS(fused_pass_float32, float)
