#include "store/embedded_keys.h"

#include <rocksdb/merge_operator.h>
#include <rocksdb/slice.h>

#include <deque>
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

std::string EncodeRegisterOperand(uint32_t index, uint8_t rank) {
  std::string op(kRegisterOperandSize, '\0');
  op[0] = static_cast<char>(index & 0xff);
  op[1] = static_cast<char>((index >> 8) & 0xff);
  op[2] = static_cast<char>(rank);
  return op;
}

bool DecodeRegisterOperand(std::string_view operand, uint32_t* index, uint8_t* rank) {
  if (operand.size() != kRegisterOperandSize) return false;
  uint32_t i = static_cast<uint8_t>(operand[0]) |
               (static_cast<uint32_t>(static_cast<uint8_t>(operand[1])) << 8);
  auto r = static_cast<uint8_t>(operand[2]);
  if (i >= kRegisterCount || r == 0 || r > kMaxRank) return false;
  *index = i;
  *rank = r;
  return true;
}

namespace {

// Applies one operand to a valid HLL; skips an invalid operand (it cannot be undone, and
// failing the merge would stop RocksDB's compactions).
void Apply(std::string* hll, std::string_view operand) {
  uint32_t index;
  uint8_t rank;
  if (operand.size() == kRegisterOperandSize) {
    if (DecodeRegisterOperand(operand, &index, &rank)) hll::SetRegister(hll, index, rank);
    return;
  }
  // On error *hll is unchanged (hll.h): the corrupt operand is skipped.
  if (!hll::Merge(hll, operand).ok()) return;
}

class HllMergeOperator : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    if (in.existing_value != nullptr) {
      std::string_view existing(in.existing_value->data(), in.existing_value->size());
      if (!hll::Validate(existing).ok()) {
        // Keep corrupt bytes as they are so reads report kCorruption.
        out->new_value.assign(existing);
        return true;
      }
      out->new_value.assign(existing);
    } else {
      out->new_value = hll::Empty();
    }
    for (const rocksdb::Slice& op : in.operand_list) {
      Apply(&out->new_value, std::string_view(op.data(), op.size()));
    }
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice& /*key*/,
                         const std::deque<rocksdb::Slice>& operand_list, std::string* new_value,
                         rocksdb::Logger* /*logger*/) const override {
    *new_value = hll::Empty();
    for (const rocksdb::Slice& op : operand_list) {
      Apply(new_value, std::string_view(op.data(), op.size()));
    }
    return true;
  }

  const char* Name() const override { return "gimel.hll.v1"; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewHllMergeOperator() {
  return std::make_shared<HllMergeOperator>();
}

}  // namespace gimel::store::embedded
