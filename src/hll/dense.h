// The dense encoding: 16384 registers of 6 bits packed LSB first (docs/hll_format.md).
//
// Internal to src/hll/. `regs` always points at the kDenseRegistersSize register bytes that
// follow the 16-byte header; no function reads or writes outside them.
// Thread-safety: pure functions over caller-owned memory.
#pragma once

#include <cstdint>
#include <span>

#include "hll/format.h"

namespace gimel::hll::dense {

using RegisterBytes = std::span<uint8_t, format::kDenseRegistersSize>;
using ConstRegisterBytes = std::span<const uint8_t, format::kDenseRegistersSize>;
// One byte per register, values 0..63.
using Registers = std::span<uint8_t, format::kRegisterCount>;
using ConstRegisters = std::span<const uint8_t, format::kRegisterCount>;
// Histogram of register values; Redis sizes it 64 so any 6-bit value has a slot.
using Histogram = std::span<uint32_t, 64>;

// Register i of the packed array. REQUIRES: i < kRegisterCount.
inline uint8_t Get(const uint8_t* regs, uint32_t i) {
  const uint32_t bit = i * format::kRegisterBits;
  const uint32_t byte = bit >> 3;
  const uint32_t shift = bit & 7;
  // A register with shift <= 2 lies within one byte; the last register (shift 2) would read
  // one byte past the array, so clamp the index: those bits are masked off anyway.
  const uint32_t next = byte + 1 < format::kDenseRegistersSize ? byte + 1 : byte;
  const uint32_t v = (uint32_t{regs[byte]} >> shift) | (uint32_t{regs[next]} << (8 - shift));
  return static_cast<uint8_t>(v & format::kRegisterMax);
}

// Stores value (0..63) in register i. REQUIRES: i < kRegisterCount, value <= 63.
inline void Put(uint8_t* regs, uint32_t i, uint8_t value) {
  const uint32_t bit = i * format::kRegisterBits;
  const uint32_t byte = bit >> 3;
  const uint32_t shift = bit & 7;
  const uint32_t next = byte + 1 < format::kDenseRegistersSize ? byte + 1 : byte;
  const uint32_t mask = format::kRegisterMax;
  regs[byte] = static_cast<uint8_t>((regs[byte] & ~(mask << shift)) | (uint32_t{value} << shift));
  // For shift <= 2 the high part is empty and this rewrites `next` unchanged.
  regs[next] = static_cast<uint8_t>((regs[next] & ~(mask >> (8 - shift))) |
                                    (uint32_t{value} >> (8 - shift)));
}

// Redis hllDenseSet: register i = max(register i, value). Returns true if it changed.
inline bool SetMax(uint8_t* regs, uint32_t i, uint8_t value) {
  if (value <= Get(regs, i)) return false;
  Put(regs, i, value);
  return true;
}

// Unpacks all registers.
void Unpack(ConstRegisterBytes regs, Registers out);
// Packs all registers. REQUIRES: every value <= 63.
void Pack(ConstRegisters in, RegisterBytes regs);
// max[i] = max(max[i], register i) for all i.
void MaxInto(ConstRegisterBytes regs, Registers max);
// Adds the count of each register value to histo (which the caller zeroes).
void AddToHistogram(ConstRegisterBytes regs, Histogram histo);

}  // namespace gimel::hll::dense
