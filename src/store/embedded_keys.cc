#include "store/embedded_keys.h"

#include <rocksdb/merge_operator.h>
#include <rocksdb/slice.h>

#include <algorithm>
#include <array>
#include <deque>
#include <span>
#include <vector>

#include "hll/hll.h"

namespace gimel::store::embedded {

static_assert(kRegisterCount == hll::kRegisters);

// ---------------------------------------------------------------------------------------------
// Names and keys
// ---------------------------------------------------------------------------------------------

void PutName(std::string* dst, std::string_view name) {
  uint32_t n = static_cast<uint32_t>(name.size());
  while (n >= 0x80) {
    dst->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  dst->push_back(static_cast<char>(n));
  dst->append(name);
}

bool GetName(std::string_view* input, std::string_view* name) {
  uint32_t len = 0;
  size_t i = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (i >= input->size()) return false;
    uint32_t byte = static_cast<uint8_t>((*input)[i++]);
    if (shift == 28 && byte > 0x0f) return false;  // would overflow 32 bits
    len |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      if (input->size() - i < len) return false;
      *name = input->substr(i, len);
      input->remove_prefix(i + len);
      return true;
    }
  }
  return false;
}

namespace {

std::string Tagged(char tag, std::initializer_list<std::string_view> names) {
  size_t size = 1;
  for (std::string_view n : names) size += n.size() + 5;
  std::string key;
  key.reserve(size);
  key.push_back(tag);
  for (std::string_view n : names) PutName(&key, n);
  return key;
}

}  // namespace

std::string CounterKey(std::string_view ns, std::string_view experiment, std::string_view event,
                       std::string_view variant) {
  return Tagged(kCounterTag, {ns, experiment, event, variant});
}

std::string CounterPrefix(std::string_view ns, std::string_view experiment) {
  return Tagged(kCounterTag, {ns, experiment});
}

std::string ExperimentKey(std::string_view ns, std::string_view experiment) {
  return Tagged(kExperimentTag, {ns, experiment});
}

std::string ExperimentPrefix(std::string_view ns) { return Tagged(kExperimentTag, {ns}); }

bool ParseCounterKey(std::string_view key, std::string_view* ns, std::string_view* experiment,
                     std::string_view* event, std::string_view* variant) {
  if (key.empty() || key[0] != kCounterTag) return false;
  key.remove_prefix(1);
  return GetName(&key, ns) && GetName(&key, experiment) && GetName(&key, event) &&
         GetName(&key, variant) && key.empty();
}

bool ParseExperimentKey(std::string_view key, std::string_view* ns, std::string_view* experiment) {
  if (key.empty() || key[0] != kExperimentTag) return false;
  key.remove_prefix(1);
  return GetName(&key, ns) && GetName(&key, experiment) && key.empty();
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto last = static_cast<uint8_t>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Merge operands
// ---------------------------------------------------------------------------------------------

void AppendRegisterEntry(std::string* operand, uint32_t index, uint8_t rank) {
  const char entry[kRegisterEntrySize] = {static_cast<char>(index & 0xff),
                                          static_cast<char>((index >> 8) & 0xff),
                                          static_cast<char>(rank)};
  operand->append(entry, kRegisterEntrySize);
}

std::string EncodeRegisterOperand(uint32_t index, uint8_t rank) {
  std::string op;
  AppendRegisterEntry(&op, index, rank);
  return op;
}

bool DecodeRegisterOperand(std::string_view entry, uint32_t* index, uint8_t* rank) {
  if (entry.size() != kRegisterEntrySize) return false;
  uint32_t i =
      static_cast<uint8_t>(entry[0]) | (static_cast<uint32_t>(static_cast<uint8_t>(entry[1])) << 8);
  auto r = static_cast<uint8_t>(entry[2]);
  if (i >= kRegisterCount || r == 0 || r > kMaxRank) return false;
  *index = i;
  *rank = r;
  return true;
}

bool IsHllOperand(std::string_view operand) { return operand.starts_with("HYLL"); }

namespace {

// Calls fn(index, rank) for every well-formed entry of a register operand; a malformed entry,
// or a whole operand whose size is not a multiple of 3, is skipped (see ApplyFew).
template <typename Fn>
void ForEachEntry(std::string_view operand, Fn&& fn) {
  if (operand.size() % kRegisterEntrySize != 0) return;
  uint32_t index;
  uint8_t rank;
  for (size_t at = 0; at < operand.size(); at += kRegisterEntrySize) {
    if (DecodeRegisterOperand(operand.substr(at, kRegisterEntrySize), &index, &rank)) {
      fn(index, rank);
    }
  }
}

// Up to this many register entries, each is applied to the encoded HLL in turn (a sparse
// SetRegister is cheap on a small sketch); beyond it, or as soon as an operand is a whole HLL,
// the operands are folded into one register array and encoded once (bench/README.md).
constexpr size_t kFoldAbove = 8;

template <typename Operands>  // std::vector or std::deque of rocksdb::Slice
bool OnlyFewRegisterEntries(const Operands& operands) {
  size_t entries = 0;
  for (const rocksdb::Slice& op : operands) {
    const std::string_view operand(op.data(), op.size());
    if (IsHllOperand(operand)) return false;
    entries += operand.size() / kRegisterEntrySize;
    if (entries > kFoldAbove) return false;
  }
  return true;
}

// Applies the register entries of few operands (OnlyFewRegisterEntries) to a valid HLL, in
// ascending register order so that one scan of a sparse HLL's opcodes serves them all; skips
// what is malformed (it cannot be undone, and failing the merge would stop RocksDB's
// compactions).
template <typename Operands>
void ApplyFew(std::string* hll, const Operands& operands) {
  std::array<hll::Register, kFoldAbove> entries;
  size_t n = 0;
  for (const rocksdb::Slice& op : operands) {
    ForEachEntry(std::string_view(op.data(), op.size()), [&](uint32_t index, uint8_t rank) {
      if (n < entries.size()) entries[n++] = {index, rank};
    });
  }
  for (size_t i = 1; i < n; ++i) {  // insertion sort: n <= 8
    const hll::Register e = entries[i];
    size_t j = i;
    for (; j > 0 && entries[j - 1].index > e.index; --j) entries[j] = entries[j - 1];
    entries[j] = e;
  }
  hll::SetRegisters(hll, std::span<const hll::Register>(entries.data(), n));
}

// The register-wise max of a base HLL and any number of operands, encoded once.
class Fold {
 public:
  // REQUIRES: hll::Validate(base).ok() (FullMergeV2 checked it: not again).
  void AddBase(std::string_view base) {
    hll::MaxRegistersValidated(base, registers_);
    dense_ = dense_ || hll::IsDense(base);
  }

  // Skips an invalid operand (see ApplyFew).
  void AddOperand(std::string_view operand) {
    if (IsHllOperand(operand)) {
      if (hll::MaxRegisters(operand, registers_).ok()) dense_ = dense_ || hll::IsDense(operand);
      return;
    }
    ForEachEntry(operand, [this](uint32_t index, uint8_t rank) {
      registers_[index] = std::max(registers_[index], rank);
    });
  }

  std::string Finish() const { return hll::FromRegisters(registers_, dense_); }

 private:
  std::array<uint8_t, hll::kRegisters> registers_{};
  bool dense_ = false;  // PFMERGE semantics: dense if any input was dense
};

class HllMergeOperator : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    std::string_view existing;
    if (in.existing_value != nullptr) {
      existing = std::string_view(in.existing_value->data(), in.existing_value->size());
      if (!hll::Validate(existing).ok()) {
        // Keep corrupt bytes as they are so reads report kCorruption.
        out->new_value.assign(existing);
        return true;
      }
    }
    if (OnlyFewRegisterEntries(in.operand_list)) {
      if (in.existing_value != nullptr) {
        out->new_value.assign(existing);
      } else {
        out->new_value = hll::Empty();
      }
      ApplyFew(&out->new_value, in.operand_list);
      return true;
    }
    Fold fold;
    if (in.existing_value != nullptr) fold.AddBase(existing);
    for (const rocksdb::Slice& op : in.operand_list) {
      fold.AddOperand(std::string_view(op.data(), op.size()));
    }
    out->new_value = fold.Finish();
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice& /*key*/,
                         const std::deque<rocksdb::Slice>& operand_list, std::string* new_value,
                         rocksdb::Logger* /*logger*/) const override {
    if (OnlyFewRegisterEntries(operand_list)) {
      *new_value = hll::Empty();
      ApplyFew(new_value, operand_list);
      return true;
    }
    Fold fold;
    for (const rocksdb::Slice& op : operand_list) {
      fold.AddOperand(std::string_view(op.data(), op.size()));
    }
    *new_value = fold.Finish();
    return true;
  }

  const char* Name() const override { return "gimel.hll.v1"; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewHllMergeOperator() {
  return std::make_shared<HllMergeOperator>();
}

}  // namespace gimel::store::embedded
