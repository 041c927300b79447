// The dense codec. Four 6-bit registers fill exactly three bytes, so every bulk loop walks
// groups of (3 bytes, 4 registers):
//
//   byte 0: r1[1:0] r0[5:0]      (r0 in the low six bits)
//   byte 1: r2[3:0] r1[5:2]
//   byte 2: r3[5:0] r2[5:4]
#include "hll/dense.h"

#include <algorithm>
#include <array>

namespace gimel::hll::dense {

namespace {

constexpr uint32_t kGroups = format::kRegisterCount / 4;
static_assert(kGroups % 2 == 0, "AddToHistogram takes two groups per step");

struct Group {
  uint8_t r[4];
};

inline Group Decode(const uint8_t* b) {
  const uint32_t b0 = b[0], b1 = b[1], b2 = b[2];
  return {{static_cast<uint8_t>(b0 & 63), static_cast<uint8_t>(((b0 >> 6) | (b1 << 2)) & 63),
           static_cast<uint8_t>(((b1 >> 4) | (b2 << 4)) & 63), static_cast<uint8_t>(b2 >> 2)}};
}

}  // namespace

void Unpack(ConstRegisterBytes regs, Registers out) {
  for (uint32_t g = 0; g < kGroups; ++g) {
    const Group v = Decode(&regs[3 * g]);
    std::copy(v.r, v.r + 4, &out[4 * g]);
  }
}

void Pack(ConstRegisters in, RegisterBytes regs) {
  for (uint32_t g = 0; g < kGroups; ++g) {
    const uint32_t r0 = in[4 * g], r1 = in[4 * g + 1], r2 = in[4 * g + 2], r3 = in[4 * g + 3];
    regs[3 * g] = static_cast<uint8_t>(r0 | (r1 << 6));
    regs[3 * g + 1] = static_cast<uint8_t>((r1 >> 2) | (r2 << 4));
    regs[3 * g + 2] = static_cast<uint8_t>((r2 >> 4) | (r3 << 2));
  }
}

void MaxInto(ConstRegisterBytes regs, Registers max) {
  for (uint32_t g = 0; g < kGroups; ++g) {
    const Group v = Decode(&regs[3 * g]);
    for (int k = 0; k < 4; ++k) max[4 * g + k] = std::max(max[4 * g + k], v.r[k]);
  }
}

void AddToHistogram(ConstRegisterBytes regs, Histogram histo) {
  // Most registers hold one of a few values, so a single histogram would serialise on
  // increments of the same counter; eight lanes (two groups per step) keep the chains of
  // dependent increments short. About 2x faster than one histogram.
  std::array<std::array<uint32_t, 64>, 8> lanes{};
  for (uint32_t g = 0; g < kGroups; g += 2) {
    const Group v = Decode(&regs[3 * g]);
    const Group w = Decode(&regs[3 * g + 3]);
    for (int k = 0; k < 4; ++k) ++lanes[k][v.r[k]];
    for (int k = 0; k < 4; ++k) ++lanes[4 + k][w.r[k]];
  }
  for (size_t i = 0; i < 64; ++i) {
    uint32_t sum = 0;
    for (const auto& lane : lanes) sum += lane[i];
    histo[i] += sum;
  }
}

}  // namespace gimel::hll::dense
