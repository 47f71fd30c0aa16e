// SPDX-License-Identifier: MIT
// Pins the kernel/user record layout of include/reqmon/abi.h: a change here must come with a
// bump of RQ_ABI_VERSION and of the capture file version.
#include <gtest/gtest.h>

#include <cstddef>

#include "reqmon/abi.h"

namespace {

TEST(AbiLayoutTest, Version) { EXPECT_EQ(RQ_ABI_VERSION, 4); }

TEST(AbiLayoutTest, Constants) {
  EXPECT_EQ(RQ_MAX_PAYLOAD, 16384);
  EXPECT_EQ(RQ_DEFAULT_PAYLOAD, 4096);
  EXPECT_EQ(RQ_MAX_IOV, 64);
  EXPECT_EQ(RQ_COMM_LEN, 16);
  EXPECT_EQ(RQ_EV_DATA, 1);
  EXPECT_EQ(RQ_EV_OPEN, 2);
  EXPECT_EQ(RQ_EV_CLOSE, 3);
  EXPECT_EQ(RQ_EV_PROC, 4);
  EXPECT_EQ(RQ_DIR_INGRESS, 0);
  EXPECT_EQ(RQ_DIR_EGRESS, 1);
  EXPECT_EQ(RQ_SYS_READ, 1);
  EXPECT_EQ(RQ_SYS_SENDFILE, 9);
  EXPECT_EQ(RQ_SYS_CLOSE, 13);
  EXPECT_EQ(RQ_SYS_SSL_READ, 14);
  EXPECT_EQ(RQ_SYS_SSL_WRITE, 15);
  EXPECT_EQ(RQ_DATA_TLS, 1);
  EXPECT_EQ(RQ_DATA_TLS_CIPHER, 2);
  EXPECT_EQ(RQ_ROLE_UNKNOWN, 0);
  EXPECT_EQ(RQ_ROLE_SERVER, 1);
  EXPECT_EQ(RQ_ROLE_CLIENT, 2);
  EXPECT_EQ(RQ_PROC_FORK, 1);
  EXPECT_EQ(RQ_PROC_EXEC, 2);
  EXPECT_EQ(RQ_PROC_EXIT, 3);
}

TEST(AbiLayoutTest, Endpoints) {
  EXPECT_EQ(sizeof(rq_endpoints), 40u);
  EXPECT_EQ(offsetof(rq_endpoints, laddr), 0u);
  EXPECT_EQ(offsetof(rq_endpoints, raddr), 16u);
  EXPECT_EQ(offsetof(rq_endpoints, lport), 32u);
  EXPECT_EQ(offsetof(rq_endpoints, rport), 34u);
  EXPECT_EQ(offsetof(rq_endpoints, family), 36u);
  EXPECT_EQ(offsetof(rq_endpoints, pad), 38u);
}

TEST(AbiLayoutTest, Header) {
  EXPECT_EQ(sizeof(rq_event_header), 32u);
  EXPECT_EQ(offsetof(rq_event_header, type), 0u);
  EXPECT_EQ(offsetof(rq_event_header, pid), 4u);
  EXPECT_EQ(offsetof(rq_event_header, tid), 8u);
  EXPECT_EQ(offsetof(rq_event_header, fd), 12u);
  EXPECT_EQ(offsetof(rq_event_header, ts_enter), 16u);
  EXPECT_EQ(offsetof(rq_event_header, ts_exit), 24u);
}

TEST(AbiLayoutTest, DataEvent) {
  EXPECT_EQ(sizeof(rq_data_event), 96u);
  EXPECT_EQ(offsetof(rq_data_event, ts_queued), 88u);
  EXPECT_EQ(offsetof(rq_data_event, ts_queued), static_cast<size_t>(RQ_DATA_EVENT_SIZE_V2));
  EXPECT_EQ(offsetof(rq_data_event, h), 0u);
  EXPECT_EQ(offsetof(rq_data_event, ep), 32u);
  EXPECT_EQ(offsetof(rq_data_event, bytes), 72u);
  EXPECT_EQ(offsetof(rq_data_event, payload_len), 80u);
  EXPECT_EQ(offsetof(rq_data_event, direction), 84u);
  EXPECT_EQ(offsetof(rq_data_event, syscall), 85u);
  EXPECT_EQ(offsetof(rq_data_event, role), 86u);
  EXPECT_EQ(offsetof(rq_data_event, flags), 87u);
}

TEST(AbiLayoutTest, ConnEvent) {
  EXPECT_EQ(sizeof(rq_conn_event), 80u);
  EXPECT_EQ(offsetof(rq_conn_event, h), 0u);
  EXPECT_EQ(offsetof(rq_conn_event, ep), 32u);
  EXPECT_EQ(offsetof(rq_conn_event, role), 72u);
  EXPECT_EQ(offsetof(rq_conn_event, syscall), 73u);
  EXPECT_EQ(offsetof(rq_conn_event, pad), 74u);
  EXPECT_EQ(offsetof(rq_conn_event, ret), 76u);
}

TEST(AbiLayoutTest, ProcEvent) {
  EXPECT_EQ(sizeof(rq_proc_event), 56u);
  EXPECT_EQ(offsetof(rq_proc_event, h), 0u);
  EXPECT_EQ(offsetof(rq_proc_event, ppid), 32u);
  EXPECT_EQ(offsetof(rq_proc_event, kind), 36u);
  EXPECT_EQ(offsetof(rq_proc_event, comm), 40u);
}

TEST(AbiLayoutTest, LostEvent) {
  EXPECT_EQ(RQ_EV_LOST, 5);
  EXPECT_EQ(sizeof(rq_lost_event), 40u);
  EXPECT_EQ(offsetof(rq_lost_event, h), 0u);
  EXPECT_EQ(offsetof(rq_lost_event, lost), 32u);
}

}  // namespace
