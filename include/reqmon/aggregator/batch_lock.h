// SPDX-License-Identifier: MIT
#pragma once
// The lock a sink holds across a batch (TransactionSink::BeginBatch() to EndBatch()).

#include <mutex>

namespace reqmon {

/// Holds a sink's mutex from Begin() to End(), for the pipeline thread's batch; the sink's input
/// calls take it with LockUnlessBatch(), which locks only outside a batch. held_ is read and
/// written by the pipeline thread alone.
class BatchLock {
 public:
  explicit BatchLock(std::mutex& mu) : mu_(mu) {}
  void Begin() {
    mu_.lock();
    held_ = true;
  }
  void End() {
    held_ = false;
    mu_.unlock();
  }
  std::unique_lock<std::mutex> LockUnlessBatch() {
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    if (!held_) lock.lock();
    return lock;
  }

 private:
  std::mutex& mu_;
  bool held_ = false;
};

}  // namespace reqmon
