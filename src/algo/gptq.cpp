#include "algo/gptq.h"

#include <cblas.h>
#include <lapack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "algo/rtn.h"
#include "base/error.h"
#include "base/parallel.h"
#include "formats/e8p.h"
#include "formats/registry.h"

namespace lowbit {

namespace {

// Rows per work tile. Tiles are fixed (not per thread), so results do not depend on the thread
// count; 128 rows keep the per-block gemm efficient and the reads of F amortised.
constexpr int64_t kRowTile = 128;

std::string at(int64_t i, int64_t j) {
  return "(" + std::to_string(i) + ", " + std::to_string(j) + ")";
}

void check_inputs(const float* w, int64_t rows, int64_t cols, const float* h, const GptqOptions& opt) {
  if (rows < 1 || cols < 1) throw Error("algo", "gptq: empty matrix " + at(rows, cols));
  if (!(opt.damp >= 0.0) || !std::isfinite(opt.damp))
    throw Error("algo", "gptq: damp must be a finite value >= 0, got " + std::to_string(opt.damp));
  if (opt.block < 1)
    throw Error("algo", "gptq: block must be >= 1, got " + std::to_string(opt.block));
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i]))
      throw Error("algo", "gptq: non-finite weight at " + at(i / cols, i % cols));
  for (int64_t i = 0; i < cols * cols; ++i)
    if (!std::isfinite(h[i]))
      throw Error("algo", "gptq: non-finite H entry at " + at(i / cols, i % cols));
}

// What every row shares: the column order, the dead columns and the feedback matrix.
struct Hessian {
  std::vector<int64_t> perm;      // [cols] loop position -> natural column
  std::vector<uint8_t> dead;      // [cols] natural order: H_ii == 0
  std::vector<float> importance;  // [cols] natural order: max(0, H_ii), for the clip search
  std::vector<float> f;           // [cols, cols] row-major, loop order: feedback F_kj, j > k
  bool from_original = false;     // e_k = w_k - ŵ_k (V form) instead of w̃_k - ŵ_k (U form)
  int dead_count = 0;
};

double sym(const float* h, int64_t n, int64_t i, int64_t j) {
  return 0.5 * (static_cast<double>(h[i * n + j]) + h[j * n + i]);
}

// diag(H) with dead columns set to 1 (natural order); fills dead, importance and dead_count.
std::vector<double> fixed_diag(const float* h, int64_t n, Hessian& hs) {
  std::vector<double> diag(static_cast<size_t>(n));
  hs.dead.assign(static_cast<size_t>(n), 0);
  hs.importance.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    diag[i] = h[i * n + i];
    hs.importance[i] = std::max(0.0f, h[i * n + i]);
    if (diag[i] == 0.0) {
      diag[i] = 1.0;
      hs.dead[i] = 1;
      ++hs.dead_count;
    }
  }
  return diag;
}

// Natural order, or by descending diag (stable: ties keep the lower index first).
std::vector<int64_t> column_order(const std::vector<double>& diag, bool act_order) {
  std::vector<int64_t> perm(diag.size());
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (act_order)
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  return perm;
}

// The lower triangle, column-major, of J (Hp + damp·mean(diag)·I) J in double, where Hp is the
// symmetrized H in loop order with the dead diagonal set to 1 and J reverses the order.
std::vector<double> reversed_damped(const float* h, int64_t n, const std::vector<int64_t>& perm,
                                    const std::vector<double>& diag, double damp) {
  const double add = damp * std::accumulate(diag.begin(), diag.end(), 0.0) / n;
  std::vector<double> a(static_cast<size_t>(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t cj = perm[n - 1 - j];
    a[j * n + j] = diag[cj] + add;
    for (int64_t i = j + 1; i < n; ++i) a[j * n + i] = sym(h, n, perm[n - 1 - i], cj);
  }
  return a;
}

// From a (see reversed_damped) = L Lᵀ, i.e. Hp + damp = V Vᵀ with V = J L J upper triangular:
// the feedback matrix F (gptq.h) as fp32 row-major [n, n], upper triangle (the lower is zero,
// the diagonal unused). U form (u_form): U = V⁻¹ = J L⁻¹ J, F_kj = -U_kj / U_kk; V form:
// F_kj = V_kj / V_jj. Consumes a.
std::vector<float> feedback_matrix(std::vector<double>& a, int64_t n64, bool u_form) {
  const lapack_int n = static_cast<lapack_int>(n64);
  lapack_int info = 0;
  LAPACK_dpotrf("L", &n, a.data(), &n, &info);
  if (info > 0)
    throw Error("algo",
                "gptq: H + damp*mean(diag(H))*I is not positive definite (Cholesky "
                "pivot " +
                    std::to_string(info) + " of " + std::to_string(n) + "); raise damp or check H");
  LOWBIT_ASSERT(info == 0);
  if (u_form) {
    LAPACK_dtrtri("L", "N", &n, a.data(), &n, &info);
    LOWBIT_ASSERT(info == 0);  // a successful dpotrf leaves a positive diagonal
  }
  // X = V or U: X_kj = a[(n-1-k) + (n-1-j)·n]; F_kj = X_kj · row[k] · col[j].
  std::vector<double> row(static_cast<size_t>(n64), 1.0), col(row);
  for (int64_t i = 0; i < n64; ++i) {
    const double x_ii = a[(n64 - 1 - i) * (n64 + 1)];
    if (u_form)
      row[i] = -1.0 / x_ii;
    else
      col[i] = 1.0 / x_ii;
  }
  constexpr int64_t kTile = 64;  // copied in tiles: a is read down its columns, f along rows
  std::vector<float> f(static_cast<size_t>(n64 * n64), 0.0f);
  for (int64_t k0 = 0; k0 < n64; k0 += kTile)
    for (int64_t j0 = k0; j0 < n64; j0 += kTile)
      for (int64_t j = j0; j < std::min(j0 + kTile, n64); ++j) {
        const double* x = &a[(n64 - 1 - j) * n64 + (n64 - 1)];  // x[-k] = X_kj
        for (int64_t k = k0; k < std::min(k0 + kTile, j + 1); ++k)
          f[k * n64 + j] = static_cast<float>(x[-k] * row[k] * col[j]);
      }
  return f;
}

// Groups fitted in the loop (gptq.h): natural order and a spec without double quant (and not a
// vector code book, whose groups are always static).
bool dynamic_groups(const QuantSpec& spec, const GptqOptions& opt) {
  return !opt.act_order && !spec.double_quant && vector_dim(spec) == 1;
}

// Vector code books (d weights per code) are coded d consecutive columns at once, so the loop
// runs in natural order (act_order off) over chunks [b, b + d) and feedback works chunk by chunk
// (QuIP#'s block LDLQ). With H = V Vᵀ the chunk's share of the proxy loss is
// ‖(W̃_B - Q_B)·V_BB‖² where W̃_B = W_B + Σ_{i<b} (w_i - ŵ_i)·V_iB·V_BB⁻¹; the chunk is coded
// to the nearest code-book point of W̃_B (the V_BB metric inside the chunk is ignored). In terms
// of the V-form F (F_kj = V_kj / V_jj, unit diagonal): V_iB·V_BB⁻¹ = F_iB·F_BB⁻¹. This rewrites
// F's columns of every chunk to F_iB·F_BB⁻¹ for the rows i < b (in double) and zeroes the
// entries inside the chunk, so the column loop and the block gemm stay as they are.
void chunk_feedback(std::vector<float>& f, int64_t n, int d) {
  std::vector<double> inv(static_cast<size_t>(d * d)), row(static_cast<size_t>(d));
  for (int64_t b = 0; b + d <= n; b += d) {
    // inv = F_BB⁻¹ (unit upper triangular), by back substitution column by column.
    std::fill(inv.begin(), inv.end(), 0.0);
    for (int j = 0; j < d; ++j) {
      inv[j * d + j] = 1.0;
      for (int i = j - 1; i >= 0; --i) {
        double acc = 0.0;
        for (int k = i + 1; k <= j; ++k) acc += static_cast<double>(f[(b + i) * n + b + k]) * inv[k * d + j];
        inv[i * d + j] = -acc;
      }
    }
    for (int64_t i = 0; i < b; ++i) {
      float* fi = &f[i * n + b];
      for (int j = 0; j < d; ++j) {
        double acc = 0.0;
        for (int k = 0; k <= j; ++k) acc += static_cast<double>(fi[k]) * inv[k * d + j];
        row[j] = acc;
      }
      for (int j = 0; j < d; ++j) fi[j] = static_cast<float>(row[j]);
    }
    for (int i = 0; i < d; ++i)
      for (int j = i + 1; j < d; ++j) f[(b + i) * n + b + j] = 0.0f;
  }
}

// Dynamic groups are fitted from intermediate weights, which only the U form has.
Hessian prepare_hessian(const float* h, int64_t n, bool u_form, const GptqOptions& opt) {
  Hessian hs;
  hs.from_original = !u_form;
  const std::vector<double> diag = fixed_diag(h, n, hs);
  hs.perm = column_order(diag, opt.act_order);
  std::vector<double> a = reversed_damped(h, n, hs.perm, diag, opt.damp);
  hs.f = feedback_matrix(a, n, u_form);
  return hs;
}

// The state the row tiles share. params [rows, groups] holds every group's parameters exactly
// as stored in m (static groups: filled before the loop; dynamic: when a group starts). With a
// WeightGrid (grid != nullptr) the codes come from the grid and spec/codec/m/params are unused.
struct Run {
  const WeightGrid* grid;
  const QuantSpec& spec;
  const GroupCodec& codec;
  const float* w;  // [rows, cols] the caller's weights
  int64_t rows, cols, glen, groups;
  const Hessian& hs;
  RtnOptions fit_opt;  // clip search setting for fit_group_rtn
  bool dynamic;        // groups fitted in the loop (natural order only)
  int dim;             // weights per code: 1, or d of a vector code book (chunk_feedback)
  int64_t block;
  QuantizedMatrix& m;
  std::vector<GroupParams>& params;
};

// Row r of w in loop order with the dead columns zeroed.
void load_row(const Run& c, int64_t r, float* out) {
  const float* src = c.w + r * c.cols;
  for (int64_t k = 0; k < c.cols; ++k) {
    const int64_t col = c.hs.perm[k];
    out[k] = c.hs.dead[col] ? 0.0f : src[col];
  }
}

// Static groups: every group fitted from the dead-zeroed original weights (natural order, as
// the loop order is then irrelevant); double-quantized specs then double-quantize the scales.
void fit_static_groups(Run& c) {
  const bool dq = c.spec.double_quant;
  std::vector<float> scales(dq ? static_cast<size_t>(c.rows * c.groups) : 0);
  parallel_for(c.rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(c.cols));
    for (int64_t r = begin; r < end; ++r) {
      const float* src = c.w + r * c.cols;
      for (int64_t k = 0; k < c.cols; ++k) row[k] = c.hs.dead[k] ? 0.0f : src[k];
      for (int64_t g = 0; g < c.groups; ++g) {
        const int64_t b = g * c.glen, n = std::min(c.glen, c.cols - b);
        const GroupParams p = fit_group_rtn(c.spec, &row[b], &c.hs.importance[b], n, c.fit_opt);
        if (dq)
          scales[r * c.groups + g] = p.scale;
        else
          set_group_params(c.m, r, g, p);
      }
    }
  });
  if (dq) set_double_quant_scales(c.m, scales.data());
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t g = 0; g < c.groups; ++g) c.params[r * c.groups + g] = group_params(c.m, r, g);
}

// Dynamic groups: fits the group starting at position k (== its natural column) of `row` from
// the row's current (error-updated) weights.
void fit_dynamic_group(const Run& c, int64_t row, const float* wrow, int64_t k) {
  const int64_t g = k / c.glen, n = std::min(c.glen, c.cols - k);
  set_group_params(c.m, row, g, fit_group_rtn(c.spec, wrow + k, &c.hs.importance[k], n, c.fit_opt));
  c.params[row * c.groups + g] = group_params(c.m, row, g);
}

// End of the lazy block starting at b. With dynamic groups the block stops before a group that
// starts inside it and would end after it, so every group is fitted from updated weights.
int64_t block_end(const Run& c, int64_t b) {
  const int64_t e = std::min(b + c.block, c.cols);
  if (!c.dynamic) return e;
  const int64_t s = (e - 1) / c.glen * c.glen;  // last group start before e
  return s > b && std::min(s + c.glen, c.cols) > e ? s : e;
}

// Positions [b, e) of one row, w0 = the row's original weights and cur = its current ones (loop
// order): codes (natural columns), the errors err[k - b] = e_k (gptq.h) and the in-block
// feedback cur_j += e_k · F_kj for b <= k < j < e.
void quantize_row_block(const Run& c, int64_t row, const float* w0, float* __restrict cur,
                        int64_t b, int64_t e, float* __restrict err, uint8_t* codes) {
  float chunk_back[kE8pDim];  // vector kinds: the values of the chunk coded at its first column
  for (int64_t k = b; k < e; ++k) {
    const int64_t col = c.hs.perm[k];
    uint8_t q = 0;
    float back = 0;
    if (c.grid) {
      q = c.grid->nearest(row, col, cur[k]);
      back = c.grid->value(row, col, q);
    } else if (c.dim > 1) {  // natural order, static groups: a chunk never straddles a group
      const GroupParams& p = c.params[row * c.groups + col / c.glen];
      if (col % c.dim == 0) {
        c.codec.encode_group(c.spec, cur + k, c.dim, p, codes + col);
        c.codec.decode_group(c.spec, codes + col, c.dim, p, chunk_back);
      }
      q = codes[col];
      back = chunk_back[col % c.dim];
    } else {
      if (c.dynamic && col % c.glen == 0) fit_dynamic_group(c, row, cur, k);
      const GroupParams& p = c.params[row * c.groups + col / c.glen];
      q = c.codec.encode(c.spec, cur[k], p);
      back = c.codec.decode(c.spec, q, p);
    }
    codes[col] = q;
    const float ek = (c.hs.from_original ? w0[k] : cur[k]) - back;
    err[k - b] = ek;
    const float* __restrict fk = &c.hs.f[k * c.cols];
    for (int64_t j = k + 1; j < e; ++j) cur[j] += ek * fk[j];
  }
}

// GPTQ over all columns for rows [r0, r1); the codes of row r0 + t go to codes_out(t).
template <class CodesOut>
void run_tile(const Run& c, int64_t r0, int64_t r1, const CodesOut& codes_out) {
  const int64_t t_rows = r1 - r0, n = c.cols, bw = std::min(c.block, n);
  std::vector<float> w0(static_cast<size_t>(t_rows * n)), err(static_cast<size_t>(t_rows * bw));
  std::vector<uint8_t> codes(static_cast<size_t>(t_rows * n));
  for (int64_t t = 0; t < t_rows; ++t) load_row(c, r0 + t, &w0[t * n]);
  std::vector<float> cur = w0;
  for (int64_t b = 0, e; b < n; b = e) {
    e = block_end(c, b);
    for (int64_t t = 0; t < t_rows; ++t)
      quantize_row_block(c, r0 + t, &w0[t * n], &cur[t * n], b, e, &err[t * bw], &codes[t * n]);
    if (e < n)  // cur[:, e:] += Err · F[b:e, e:]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(t_rows),
                  static_cast<int>(n - e), static_cast<int>(e - b), 1.0f, err.data(),
                  static_cast<int>(bw), &c.hs.f[b * n + e], static_cast<int>(n), 1.0f, &cur[e],
                  static_cast<int>(n));
  }
  for (int64_t t = 0; t < t_rows; ++t) codes_out(t, &codes[t * n]);
}

int64_t tiles(int64_t rows) {
  return (rows + kRowTile - 1) / kRowTile;
}

// tr(ΔW H ΔWᵀ) with ΔW = w - dequantize(m): fp32 gemm per row tile, sums in double, tiles
// added in a fixed order.
double proxy_loss(const QuantizedMatrix& m, const float* w, const float* h) {
  const int64_t n = m.cols;
  std::vector<double> part(static_cast<size_t>(tiles(m.rows)), 0.0);
  parallel_for(tiles(m.rows), [&](int64_t t0, int64_t t1) {
    std::vector<float> d(static_cast<size_t>(kRowTile * n)), dh(d.size());
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kRowTile, nr = std::min(kRowTile, m.rows - r0);
      for (int64_t i = 0; i < nr; ++i) {
        dequantize_row(m, r0 + i, &d[i * n]);
        for (int64_t k = 0; k < n; ++k) d[i * n + k] = w[(r0 + i) * n + k] - d[i * n + k];
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(nr),
                  static_cast<int>(n), static_cast<int>(n), 1.0f, d.data(), static_cast<int>(n), h,
                  static_cast<int>(n), 0.0f, dh.data(), static_cast<int>(n));
      for (int64_t i = 0; i < nr * n; ++i) part[t] += static_cast<double>(d[i]) * dh[i];
    }
  });
  return std::accumulate(part.begin(), part.end(), 0.0);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

QuantizedMatrix quantize_gptq_impl(const float* w, int64_t rows, int64_t cols,
                                   const QuantSpec& spec, const GptqOptions& opt,
                                   const Hessian& hs) {
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  std::vector<GroupParams> params(static_cast<size_t>(rows * m.groups_per_row()));
  Run c{.grid = nullptr,
        .spec = spec,
        .codec = *format_info(spec.kind).codec,
        .w = w,
        .rows = rows,
        .cols = cols,
        .glen = m.group_len(),
        .groups = m.groups_per_row(),
        .hs = hs,
        .fit_opt = RtnOptions{},
        .dynamic = dynamic_groups(spec, opt),
        .dim = vector_dim(spec),
        .block = (opt.block + vector_dim(spec) - 1) / vector_dim(spec) * vector_dim(spec),
        .m = m,
        .params = params};
  c.fit_opt.clip_search = opt.clip_search;
  if (!c.dynamic) fit_static_groups(c);
  parallel_for(tiles(rows), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kRowTile;
      run_tile(c, r0, std::min(rows, r0 + kRowTile),
               [&](int64_t i, const uint8_t* codes) { set_row_codes(m, r0 + i, codes); });
    }
  });
  return m;
}

}  // namespace

QuantizedMatrix quantize_gptq(const float* w, int64_t rows, int64_t cols, const float* h,
                              const QuantSpec& spec, const GptqOptions& opt, GptqReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  check_inputs(w, rows, cols, h, opt);
  check_quant_spec(spec);
  check_vector_shape(spec, cols, "algo");
  Hessian hs;
  QuantizedMatrix m;
  if (spec.quantized()) {
    const int dim = vector_dim(spec);
    GptqOptions o = opt;
    if (dim > 1) o.act_order = false;  // chunks are consecutive natural columns
    // throws when H + damp is not positive definite
    hs = prepare_hessian(h, cols, dynamic_groups(spec, o), o);
    if (dim > 1) chunk_feedback(hs.f, cols, dim);
    m = quantize_gptq_impl(w, rows, cols, spec, o, hs);
  } else {
    fixed_diag(h, cols, hs);  // dead columns and importance only: plain storage needs no factor
    m = quantize_rtn(w, rows, cols, spec);
  }
  if (!report) return m;
  report->seconds = seconds_since(t0);
  report->dead_columns = hs.dead_count;
  report->proxy_loss = proxy_loss(m, w, h);
  RtnOptions ro;
  ro.clip_search = opt.clip_search;
  ro.importance = hs.importance.data();
  report->proxy_loss_rtn = spec.quantized()
                               ? proxy_loss(quantize_rtn(w, rows, cols, spec, ro), w, h)
                               : report->proxy_loss;
  return m;
}

std::vector<uint8_t> gptq_grid_codes(const float* w, int64_t rows, int64_t cols, const float* h,
                                     const WeightGrid& grid, const GptqOptions& opt) {
  check_inputs(w, rows, cols, h, opt);
  const Hessian hs = prepare_hessian(h, cols, /*u_form=*/false, opt);
  const QuantSpec none;  // unused with a grid
  QuantizedMatrix unused;
  std::vector<GroupParams> no_params;
  const Run c{.grid = &grid,
              .spec = none,
              .codec = *format_info(FormatKind::Int).codec,
              .w = w,
              .rows = rows,
              .cols = cols,
              .glen = cols,
              .groups = 1,
              .hs = hs,
              .fit_opt = RtnOptions{},
              .dynamic = false,
              .dim = 1,
              .block = opt.block,
              .m = unused,
              .params = no_params};
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  parallel_for(tiles(rows), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kRowTile;
      run_tile(c, r0, std::min(rows, r0 + kRowTile), [&](int64_t i, const uint8_t* row_codes) {
        std::copy_n(row_codes, cols, codes.begin() + (r0 + i) * cols);
      });
    }
  });
  return codes;
}

}  // namespace lowbit
