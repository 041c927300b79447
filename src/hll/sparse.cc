// The sparse codec: validation and Redis's in-place register update.
//
// Set() follows the algorithm of Redis's hllSparseSet step by step (Redis 7, hyperloglog.c),
// re-implemented from its description: the exact byte output depends on each choice below
// (which opcode a split produces, when a VAL pair merges, how far the merge window reaches),
// and gimel promises byte equality with Redis, so keep them.
//
//   1. Scan opcodes to the one covering `index`, remembering the opcode before it (prev).
//   2. A) VAL >= value: nothing to do.  B) VAL of len 1: rewrite it.  C) ZERO of len 1: turn it
//      into VAL(value,1).  D) Otherwise split the run into up to three opcodes
//      [left part] VAL(value,1) [right part]; a zero part longer than 64 is an XZERO, else a
//      ZERO; a VAL part keeps the old value. If the sketch grows and would exceed 3000 bytes
//      (header included), promote to dense instead.
//   3. From prev (or the first opcode), visit up to 5 opcodes; whenever a VAL is followed by a
//      VAL of the same value and their lengths sum to <= 4, merge them and try again at the
//      same place (the visit still counts against the 5).
//   4. Mark the cached cardinality stale.
#include "hll/sparse.h"

#include <string>

namespace gimel::hll::sparse {

Status ValidateOps(std::string_view ops) {
  return ForEachRunValidating(ops, [](uint32_t, uint32_t, uint8_t) {});
}

Status CorruptRuns(uint32_t covered) {
  if (covered == kTruncated) return Status::Corruption("hll: sparse XZERO opcode truncated");
  if (covered > format::kRegisterCount) {
    return Status::Corruption("hll: sparse runs cover more than 16384 registers");
  }
  return Status::Corruption("hll: sparse runs cover " + std::to_string(covered) +
                            " registers, expected 16384");
}

namespace {

// Appends a zero run of len (>= 1) as Redis's split does: XZERO if it does not fit a ZERO.
inline uint8_t* PutZeroRun(uint8_t* n, uint32_t len) {
  if (len > format::kSparseZeroMaxLen) {
    PutXZero(n, len);
    return n + 2;
  }
  *n = ZeroOp(len);
  return n + 1;
}

}  // namespace

SetResult Set(std::string* hll, uint32_t index, uint8_t value, Cursor* cursor) {
  if (value > format::kSparseValMaxValue) return SetResult::kPromote;

  // ---- Step 1: find the opcode p covering `index`.
  constexpr size_t kNone = 0;
  const auto* s = reinterpret_cast<const uint8_t*>(hll->data());
  size_t end = hll->size();
  size_t p = format::kHeaderSize;
  uint32_t first = 0;
  size_t prev = kNone;
  if (cursor != nullptr && cursor->pos != kNone && index >= cursor->first) {
    p = cursor->pos;
    first = cursor->first;
    prev = cursor->prev;
  }
  const size_t start = p;
  size_t prev_prev = kNone;  // the opcode before prev, once the scan has advanced
  uint32_t prev_first = 0;   // first register of prev, once the scan has advanced
  uint32_t span = 0;
  while (p < end) {
    size_t oplen = 1;
    if (IsZero(s[p])) {
      span = ZeroLen(s[p]);
    } else if (IsVal(s[p])) {
      span = ValLen(s[p]);
    } else {
      if (p + 1 >= end) return SetResult::kInvalid;
      span = XZeroLen(s[p], s[p + 1]);
      oplen = 2;
    }
    if (index - first < span) break;  // index >= first holds throughout
    prev_prev = prev;
    prev = p;
    prev_first = first;
    p += oplen;
    first += span;
  }
  if (span == 0 || p >= end) return SetResult::kInvalid;
  const bool advanced = p != start;

  // ---- Step 2: update or split the opcode at p.
  const uint8_t op = s[p];
  bool changed = true;
  std::string& str = *hll;
  if (IsVal(op) && ValValue(op) >= value) {  // A
    changed = false;
  } else if ((IsVal(op) || IsZero(op)) && span == 1) {  // B, C
    str[p] = static_cast<char>(ValOp(value, 1));
  } else {  // D
    uint8_t seq[5];
    uint8_t* n = seq;
    const uint32_t last = first + span - 1;
    if (IsVal(op)) {
      const uint8_t old = ValValue(op);
      if (index != first) *n++ = ValOp(old, index - first);
      *n++ = ValOp(value, 1);
      if (index != last) *n++ = ValOp(old, last - index);
    } else {
      if (index != first) n = PutZeroRun(n, index - first);
      *n++ = ValOp(value, 1);
      if (index != last) n = PutZeroRun(n, last - index);
    }
    const size_t seq_len = static_cast<size_t>(n - seq);
    const size_t old_len = IsXZero(op) ? 2 : 1;
    if (seq_len > old_len && end + (seq_len - old_len) > format::kSparseMaxBytes) {
      return SetResult::kPromote;
    }
    str.replace(p, old_len, reinterpret_cast<const char*>(seq), seq_len);
    end = str.size();
  }

  // ---- Step 3: merge adjacent equal VALs in a window of 5 opcodes starting at prev.
  bool merged_at_prev = false;
  if (changed) {
    auto* w = reinterpret_cast<uint8_t*>(str.data());
    size_t q = prev != kNone ? prev : format::kHeaderSize;
    int window = 5;
    while (q < end && window-- > 0) {
      if (IsXZero(w[q])) {
        q += 2;
        continue;
      }
      if (IsZero(w[q])) {
        q += 1;
        continue;
      }
      if (q + 1 < end && IsVal(w[q + 1]) && ValValue(w[q]) == ValValue(w[q + 1])) {
        const uint32_t len = ValLen(w[q]) + ValLen(w[q + 1]);
        if (len <= format::kSparseValMaxLen) {
          w[q + 1] = ValOp(ValValue(w[q]), len);
          str.erase(q, 1);
          w = reinterpret_cast<uint8_t*>(str.data());
          --end;
          if (q == prev) merged_at_prev = true;
          continue;  // try the merged VAL against its new right neighbour
        }
      }
      q += 1;
    }
    // ---- Step 4.
    str[format::kCardStaleByte] = static_cast<char>(
        static_cast<uint8_t>(str[format::kCardStaleByte]) | format::kCardStaleBit);
  }

  // Where the next (larger) index may resume: bytes before prev never change here, and the
  // opcode at prev keeps its offset and first register even when the window merges into it.
  if (cursor != nullptr) {
    if (advanced) {
      *cursor = {prev, prev_first, prev_prev};
    } else if (merged_at_prev) {
      *cursor = {};  // the opcode at `start` was merged into prev: rescan from the beginning
    }                // else the opcode at `start` still begins at `first` with the same predecessor
  }
  return changed ? SetResult::kChanged : SetResult::kUnchanged;
}

}  // namespace gimel::hll::sparse
