// Internal: the packed layouts the kernels read, the per-call activation layouts, and the kernel
// entry points of each ISA. Nothing here is persisted; it is rebuilt from a QuantizedMatrix at
// load. See packed_matrix.h for the numerics every kernel implements.
//
// Integer family, tile_rows = R (16 AVX-512, 8 AVX2):
//   A row tile is R consecutive rows (the last one padded with zero-scale rows). A row's columns
//   are cut into k-blocks of 32 that restart at each group boundary: group g covers blocks
//   [g·bpg, min((g+1)·bpg, n_blocks)), bpg = ceil(group_len/32); padded columns hold u = 0.
//   codes  [row_tiles][n_blocks][block_bytes]   block_bytes = 4·R·bits
//     A block is 8 "steps" of 4 columns; step j as a vector of 4R bytes is
//     byte[4r + i] = u(row r, column 4j + i)  (what vpdpbusd / maddubs want: lane r = row r).
//     The bits are split into planes of p ∈ {8, 4, 2, 1} bits at bit offset `off` (kPlanes):
//     plane (p, off) is p vectors of 4R bytes; vector m holds steps m + p·K (K < 8/p) at bit
//     p·K of each byte, i.e. bits [off, off+p) of those steps' u.
//     LUT formats (NF4, FP4) store the 4-bit code q and map it to u with a 16-byte table.
//     AVX2 "wide" layouts (u may exceed 127: Int8, NF4) store u ^ 0x80 (= u − 128 as int8) and
//     zeros − 128, so maddubs never saturates; the integer dot is the same.
//   scales [row_tiles][n_groups][R]   fp16 / bf16 bits or fp32 (ScaleStore)
//   zeros  [row_tiles][n_groups][R]   uint8 (int8 when wide); asym only, else const_zero
// Integer family, E8P direct layout (AVX-512 with VBMI, GFNI and BITALG; R = 16, bits = 2):
//   the 16-bit E8P codes themselves, 2 bits per weight in memory, decoded in registers to
//   u = 4·value/scale + 11 (z = 11, m = 1/4: the same u, z, m as E8P's LUT layout, so the same
//   numerics bit for bit). A k-block of 32 columns is 4 "chunks" of 8 (one code per row each);
//   codes [row_tiles][n_blocks][2][32] uint16: half h holds chunks 2h and 2h+1, and word i of a
//   half is the code of chunk 2h + (i % 8 >= 4), row L + 8·(i % 2), where L = 2·(i / 8) +
//   (i % 4) / 2 (the order in which vpunpck{l,h}wd pairs rows L and L + 8 in one qword lane).
//   Chunks past the block's real columns hold code 0 (their activations are 0).
// Integer family, scalar twin (R = 1): codes [rows][n_blocks][32] one u per byte (padding 0),
//   scales fp32 [rows][n_groups], zeros uint8 [rows][n_groups] (asym only).
//
// Float family, tile_rows = R: elems [row_tiles][cols][R] (fp32 / fp16 / bf16 / e4m3 codes);
//   FP8 scales [row_tiles][n_groups][R]. Scalar twin: elems fp32 [rows][cols] holding the exact
//   weight (FP8: e4m3(q)/256), scales fp32 [rows][n_groups].
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>

#include "formats/quant_spec.h"
#include "kernels/packed_matrix.h"

namespace lowbit {

// A 64-byte aligned, zero-initialised byte buffer. Move-only. The accessors are always_inline:
// the AVX-512 sources use them too, and no out-of-line copy may be emitted there (in an -O0
// build the linker could pick that copy for the AVX2-only code).
class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(int64_t n);
  ~AlignedBytes() { std::free(ptr_); }
  AlignedBytes(AlignedBytes&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
    o.ptr_ = nullptr;
    o.size_ = 0;
  }
  AlignedBytes& operator=(AlignedBytes&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(size_, o.size_);
    return *this;
  }
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;

  [[gnu::always_inline]] uint8_t* data() { return ptr_; }
  [[gnu::always_inline]] const uint8_t* data() const { return ptr_; }
  [[gnu::always_inline]] int64_t size() const { return size_; }
  template <class T>
  [[gnu::always_inline]] T* as() {
    return reinterpret_cast<T*>(ptr_);
  }
  template <class T>
  [[gnu::always_inline]] const T* as() const {
    return reinterpret_cast<const T*>(ptr_);
  }

 private:
  uint8_t* ptr_ = nullptr;
  int64_t size_ = 0;
};

enum class ScaleStore : uint8_t { F16, BF16, F32 };

inline constexpr int kBlock = 32;  // columns per k-block (integer family)

// Bit planes of a code of `bits` bits: {p, off} pairs, lowest first.
struct Plane {
  int p, off;
};
struct PlaneSet {
  int n;
  Plane planes[3];
};
constexpr PlaneSet planes_for(int bits) {
  switch (bits) {
    case 2:
      return {1, {{2, 0}}};
    case 3:
      return {2, {{2, 0}, {1, 2}}};
    case 4:
      return {1, {{4, 0}}};
    case 5:
      return {2, {{4, 0}, {1, 4}}};
    case 6:
      return {2, {{4, 0}, {2, 4}}};
    case 7:
      return {3, {{4, 0}, {2, 4}, {1, 6}}};
    default:
      return {1, {{8, 0}}};
  }
}

struct IntPacked {
  int tile_rows = 1;  // R; 1 = scalar twin layout
  int bits = 8;       // stored code bits (LUT formats: 4)
  bool lut4 = false;  // codes index `lut`
  bool wide = false;  // AVX2: stored u ^ 0x80, zeros − 128
  bool asym = false;  // per-group zeros array, else const_zero
  bool e8p = false;   // E8P direct layout (codes are E8P words, see above)
  ScaleStore scale_store = ScaleStore::F32;
  int32_t const_zero = 0;  // zero when !asym, in the stored representation
  float act_mult = 1.0f;   // m: activation block scale xs = d · m
  uint8_t lut[16] = {};    // LUT formats: code q -> stored u (u ^ 0x80 when wide)
  int64_t rows = 0, cols = 0, row_tiles = 0;
  int64_t group_len = 0, n_groups = 0, n_blocks = 0, blocks_per_group = 0;
  int64_t block_bytes = 0;  // bytes of one [tile, block] code block
  AlignedBytes codes, scales, zeros;
};

struct FloatPacked {
  enum class Elem : uint8_t { F32, F16, BF16, FP8 };
  int tile_rows = 1;
  Elem elem = Elem::F32;
  ScaleStore scale_store = ScaleStore::F32;  // FP8 only
  int64_t rows = 0, cols = 0, row_tiles = 0, group_len = 0, n_groups = 0;
  AlignedBytes elems, scales;
};

// Quantized activations of one call, in token tiles of nt tokens (T padded with zero tokens).
struct IntActs {
  int nt = 1;
  int64_t tok_tiles = 0, n_blocks = 0;
  const int8_t* q = nullptr;     // [tok_tiles][n_blocks][nt][32]
  const float* scale = nullptr;  // [tok_tiles][n_blocks][nt]  d · m
  // [tok_tiles][n_blocks][nt] the zero-point term of the block's integer dot:
  //   asym: low half −Σq as int16, high half 0 (for vpdpwssd / pmaddwd with per-row zeros);
  //   sym:  −const_zero · Σq as int32.
  const int32_t* negsum = nullptr;
};

// fp32 activations of one call, in token tiles: x[t][k] at x[(tile·cols + k)·nt + t % nt].
// With nt == 1 this is the caller's X itself.
struct FloatActs {
  int nt = 1;
  int64_t tok_tiles = 0;
  const float* x = nullptr;  // [tok_tiles][cols][nt]
};

// Kernels compute y[t, r] for every row r of row tiles [tile0, tile1) and t < T.
// y is [T, rows]; rows past w.rows are never written.
using IntKernel = void (*)(const IntPacked& w, const IntActs& a, int64_t tile0, int64_t tile1,
                           int64_t T, float* y);
using FloatKernel = void (*)(const FloatPacked& w, const FloatActs& a, int64_t tile0, int64_t tile1,
                             int64_t T, float* y);

// Per-ISA entry points (kernels_ref.cpp, *_avx2.cpp, *_avx512.cpp). The tile width R, the
// prefill token tile nt, and the kernel for a packed layout.
struct IsaTraits {
  int tile_rows;
  int prefill_nt;
};
IsaTraits isa_traits(Isa isa);
IntKernel int_kernel_scalar(const IntPacked& w);
IntKernel int_kernel_avx2(const IntPacked& w);
IntKernel int_kernel_avx512(const IntPacked& w);
IntKernel e8p_kernel_avx512(const IntPacked& w);  // w.e8p layouts (e8p_avx512.cpp)
FloatKernel float_kernel_scalar(const FloatPacked& w);
FloatKernel float_kernel_avx2(const FloatPacked& w);
FloatKernel float_kernel_avx512(const FloatPacked& w);

// Packing (pack_int.cpp, pack_float.cpp). `isa` only selects wide/LUT details; R = tile_rows.
bool is_int_family(FormatKind kind);
IntPacked pack_int(const QuantizedMatrix& m, Isa isa, int tile_rows);
FloatPacked pack_float(const QuantizedMatrix& m, int tile_rows);

// E8P direct layout (pack_e8p.cpp). Whether this CPU runs its kernel; whether AVX-512 packing
// uses it (it does unless LOWBIT_E8P_EXPAND is set: then E8P is expanded at load to the 4-bit
// look-up layout, twice the memory, ~10-20 % faster where decode is compute-bound; same
// results); the packed codes of a matrix (w's shape fields filled in); the u bytes of one packed
// block as u[lane·32 + column] for the 16 lanes; and the tables the kernel decodes with.
bool runs_e8p_avx512();
bool e8p_direct_enabled();
void pack_e8p_codes(const QuantizedMatrix& m, IntPacked& w);
void e8p_block_codes(const uint8_t* block, uint8_t* u);
uint8_t* e8p_prefill_scratch(int64_t bytes);  // the calling thread's buffer, 64-byte aligned
struct E8pKernelTables {
  // Pattern p's magnitudes as two bit planes: bit j of the low byte is set when |y_j| = 3/2,
  // bit j of the high byte when |y_j| = 5/2 (neither: 1/2).
  alignas(64) uint16_t planes[256];
  // u of one weight from a 6-bit index whose low nibble is (bit 0: |y| = 5/2, bit 1: |y| = 3/2,
  // bit 2: t = −1/4, bit 3: y < 0); bits 4 and 5 are ignored (the table repeats).
  alignas(64) uint8_t nibble_u[64];
};
const E8pKernelTables& e8p_kernel_tables();

// Rows [r0, r0 + n) as fp32 [n, cols]: exactly the weights the kernels multiply by (integer
// family: scale · m · (u − z); NF4 therefore on its int8 levels). unpack_rows.cpp.
void unpack_int_rows(const IntPacked& w, int64_t r0, int64_t n, float* out);
void unpack_float_rows(const FloatPacked& w, int64_t r0, int64_t n, float* out);

// Code q of column c in a row's bit-packed LSB-first code bytes.
inline uint32_t read_code(const uint8_t* row_codes, int64_t c, int bits) {
  const int64_t bit = c * bits;
  const uint8_t* p = row_codes + (bit >> 3);
  const int sh = static_cast<int>(bit & 7);
  uint32_t v = p[0] >> sh;
  if (sh + bits > 8) v |= static_cast<uint32_t>(p[1]) << (8 - sh);
  return v & ((1u << bits) - 1u);
}

// Scale s of group g of row r as fp32 (fp16/bf16 widened exactly, double quant decoded).
float group_scale(const QuantizedMatrix& m, int64_t r, int64_t g);

}  // namespace lowbit
