/* nbd-conformance: unit test restating every constant and wire structure
 * size of nbd-proto.h as the number the protocol documents give
 * (shared/upstream/proto.md and proto-extension-ext-header.md).  A typo
 * in the header fails here against an independent second copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nbd-proto.h"

static void
test_magics (void **state)
{
  assert_true (NBD_MAGIC == UINT64_C (0x4e42444d41474943));
  assert_memory_equal ("NBDMAGIC", "\x4e\x42\x44\x4d\x41\x47\x49\x43", 8);
  assert_true (NBD_OLD_VERSION == UINT64_C (0x00420281861253));
  assert_true (NBD_NEW_VERSION == UINT64_C (0x49484156454F5054));
  assert_memory_equal ("IHAVEOPT", "\x49\x48\x41\x56\x45\x4F\x50\x54", 8);
  assert_true (NBD_REP_MAGIC == UINT64_C (0x3e889045565a9));
  assert_true (NBD_REQUEST_MAGIC == 0x25609513);
  assert_true (NBD_EXTENDED_REQUEST_MAGIC == 0x21e41c71);
  assert_true (NBD_SIMPLE_REPLY_MAGIC == 0x67446698);
  assert_true (NBD_STRUCTURED_REPLY_MAGIC == 0x668e33ef);
  assert_true (NBD_EXTENDED_REPLY_MAGIC == 0x6e8a278c);
}

static void
test_handshake_flags (void **state)
{
  assert_int_equal (NBD_FLAG_FIXED_NEWSTYLE, 1);
  assert_int_equal (NBD_FLAG_NO_ZEROES, 2);
  assert_int_equal (NBD_FLAG_C_FIXED_NEWSTYLE, 1);
  assert_int_equal (NBD_FLAG_C_NO_ZEROES, 2);
}

static void
test_transmission_flags (void **state)
{
  assert_int_equal (NBD_FLAG_HAS_FLAGS, 1);
  assert_int_equal (NBD_FLAG_READ_ONLY, 2);
  assert_int_equal (NBD_FLAG_SEND_FLUSH, 4);
  assert_int_equal (NBD_FLAG_SEND_FUA, 8);
  assert_int_equal (NBD_FLAG_ROTATIONAL, 16);
  assert_int_equal (NBD_FLAG_SEND_TRIM, 32);
  assert_int_equal (NBD_FLAG_SEND_WRITE_ZEROES, 64);
  assert_int_equal (NBD_FLAG_SEND_DF, 128);
  assert_int_equal (NBD_FLAG_CAN_MULTI_CONN, 256);
  assert_int_equal (NBD_FLAG_SEND_RESIZE, 512);
  assert_int_equal (NBD_FLAG_SEND_CACHE, 1024);
  assert_int_equal (NBD_FLAG_SEND_FAST_ZERO, 2048);
  assert_int_equal (NBD_FLAG_BLOCK_STAT_PAYLOAD, 4096);
}

static void
test_options (void **state)
{
  assert_int_equal (NBD_OPT_EXPORT_NAME, 1);
  assert_int_equal (NBD_OPT_ABORT, 2);
  assert_int_equal (NBD_OPT_LIST, 3);
  assert_int_equal (NBD_OPT_PEEK_EXPORT, 4);
  assert_int_equal (NBD_OPT_STARTTLS, 5);
  assert_int_equal (NBD_OPT_INFO, 6);
  assert_int_equal (NBD_OPT_GO, 7);
  assert_int_equal (NBD_OPT_STRUCTURED_REPLY, 8);
  assert_int_equal (NBD_OPT_LIST_META_CONTEXT, 9);
  assert_int_equal (NBD_OPT_SET_META_CONTEXT, 10);
  assert_int_equal (NBD_OPT_EXTENDED_HEADERS, 11);
}

static void
test_option_replies (void **state)
{
  assert_int_equal (NBD_REP_ACK, 1);
  assert_int_equal (NBD_REP_SERVER, 2);
  assert_int_equal (NBD_REP_INFO, 3);
  assert_int_equal (NBD_REP_META_CONTEXT, 4);
  /* The spec writes the errors as 2^31 + n. */
  assert_true (NBD_REP_ERR (0) == UINT32_C (2147483648));
  assert_true (NBD_REP_ERR_UNSUP == UINT32_C (2147483648) + 1);
  assert_true (NBD_REP_ERR_POLICY == UINT32_C (2147483648) + 2);
  assert_true (NBD_REP_ERR_INVALID == UINT32_C (2147483648) + 3);
  assert_true (NBD_REP_ERR_PLATFORM == UINT32_C (2147483648) + 4);
  assert_true (NBD_REP_ERR_TLS_REQD == UINT32_C (2147483648) + 5);
  assert_true (NBD_REP_ERR_UNKNOWN == UINT32_C (2147483648) + 6);
  assert_true (NBD_REP_ERR_SHUTDOWN == UINT32_C (2147483648) + 7);
  assert_true (NBD_REP_ERR_BLOCK_SIZE_REQD == UINT32_C (2147483648) + 8);
  assert_true (NBD_REP_ERR_TOO_BIG == UINT32_C (2147483648) + 9);
  assert_true (NBD_REP_ERR_EXT_HEADER_REQD == UINT32_C (2147483648) + 10);
}

static void
test_info (void **state)
{
  assert_int_equal (NBD_INFO_EXPORT, 0);
  assert_int_equal (NBD_INFO_NAME, 1);
  assert_int_equal (NBD_INFO_DESCRIPTION, 2);
  assert_int_equal (NBD_INFO_BLOCK_SIZE, 3);
}

static void
test_commands (void **state)
{
  assert_int_equal (NBD_CMD_READ, 0);
  assert_int_equal (NBD_CMD_WRITE, 1);
  assert_int_equal (NBD_CMD_DISC, 2);
  assert_int_equal (NBD_CMD_FLUSH, 3);
  assert_int_equal (NBD_CMD_TRIM, 4);
  assert_int_equal (NBD_CMD_CACHE, 5);
  assert_int_equal (NBD_CMD_WRITE_ZEROES, 6);
  assert_int_equal (NBD_CMD_BLOCK_STATUS, 7);
  assert_int_equal (NBD_CMD_RESIZE, 8);
}

static void
test_command_flags (void **state)
{
  assert_int_equal (NBD_CMD_FLAG_FUA, 1);
  assert_int_equal (NBD_CMD_FLAG_NO_HOLE, 2);
  assert_int_equal (NBD_CMD_FLAG_DF, 4);
  assert_int_equal (NBD_CMD_FLAG_REQ_ONE, 8);
  assert_int_equal (NBD_CMD_FLAG_FAST_ZERO, 16);
  assert_int_equal (NBD_CMD_FLAG_PAYLOAD_LEN, 32);
  assert_int_equal (NBD_REPLY_FLAG_DONE, 1);
}

static void
test_reply_types (void **state)
{
  assert_int_equal (NBD_REPLY_TYPE_NONE, 0);
  assert_int_equal (NBD_REPLY_TYPE_OFFSET_DATA, 1);
  assert_int_equal (NBD_REPLY_TYPE_OFFSET_HOLE, 2);
  assert_int_equal (NBD_REPLY_TYPE_BLOCK_STATUS, 5);
  assert_int_equal (NBD_REPLY_TYPE_BLOCK_STATUS_EXT, 6);
  /* 2^15 + n */
  assert_int_equal (NBD_REPLY_TYPE_ERR (0), 32768);
  assert_int_equal (NBD_REPLY_TYPE_ERROR, 32768 + 1);
  assert_int_equal (NBD_REPLY_TYPE_ERROR_OFFSET, 32768 + 2);
}

static void
test_errors (void **state)
{
  assert_int_equal (NBD_SUCCESS, 0);
  assert_int_equal (NBD_EPERM, 1);
  assert_int_equal (NBD_EIO, 5);
  assert_int_equal (NBD_ENOMEM, 12);
  assert_int_equal (NBD_EINVAL, 22);
  assert_int_equal (NBD_ENOSPC, 28);
  assert_int_equal (NBD_EOVERFLOW, 75);
  assert_int_equal (NBD_ENOTSUP, 95);
  assert_int_equal (NBD_ESHUTDOWN, 108);
}

static void
test_states_and_limits (void **state)
{
  assert_int_equal (NBD_STATE_HOLE, 1);
  assert_int_equal (NBD_STATE_ZERO, 2);
  assert_int_equal (NBD_MAX_STRING, 4096);
  assert_int_equal (NBD_OLDSTYLE_ZEROES, 124);
  assert_int_equal (NBD_NEWSTYLE_ZEROES, 124);
  assert_int_equal (NBD_DEFAULT_MAX_PAYLOAD, 33554432);
  assert_int_equal (NBD_MIN_BLOCK_DEFAULT, 1);
  assert_string_equal (NBD_BLOCK_ALLOCATION_CTX, "base:allocation");
}

static void
test_struct_sizes (void **state)
{
  assert_int_equal (sizeof (struct nbd_old_handshake), 152);
  assert_int_equal (sizeof (struct nbd_new_handshake), 18);
  assert_int_equal (sizeof (struct nbd_new_option), 16);
  assert_int_equal (sizeof (struct nbd_export_name_reply), 10);
  assert_int_equal (sizeof (struct nbd_fixed_new_option_reply), 20);
  assert_int_equal (sizeof (struct nbd_info_export), 12);
  assert_int_equal (sizeof (struct nbd_info_block_size), 14);
  assert_int_equal (sizeof (struct nbd_request), 28);
  assert_int_equal (sizeof (struct nbd_request_ext), 32);
  assert_int_equal (sizeof (struct nbd_simple_reply), 16);
  assert_int_equal (sizeof (struct nbd_structured_reply), 20);
  assert_int_equal (sizeof (struct nbd_extended_reply), 32);
  assert_int_equal (sizeof (struct nbd_chunk_offset_data), 8);
  assert_int_equal (sizeof (struct nbd_chunk_offset_hole), 12);
  assert_int_equal (sizeof (struct nbd_chunk_error), 6);
  assert_int_equal (sizeof (struct nbd_block_descriptor), 8);
  assert_int_equal (sizeof (struct nbd_block_descriptor_ext), 16);
  assert_int_equal (sizeof (struct nbd_chunk_block_status), 4);
  assert_int_equal (sizeof (struct nbd_chunk_block_status_ext), 8);
}

static void
test_field_offsets (void **state)
{
  assert_int_equal (offsetof (struct nbd_old_handshake, exportsize), 16);
  assert_int_equal (offsetof (struct nbd_old_handshake, gflags), 24);
  assert_int_equal (offsetof (struct nbd_old_handshake, eflags), 26);
  assert_int_equal (offsetof (struct nbd_old_handshake, zeroes), 28);
  assert_int_equal (offsetof (struct nbd_new_handshake, gflags), 16);
  assert_int_equal (offsetof (struct nbd_new_option, option), 8);
  assert_int_equal (offsetof (struct nbd_new_option, optlen), 12);
  assert_int_equal (offsetof (struct nbd_fixed_new_option_reply, option), 8);
  assert_int_equal (offsetof (struct nbd_fixed_new_option_reply, reply), 12);
  assert_int_equal (offsetof (struct nbd_fixed_new_option_reply, replylen),
                    16);
  assert_int_equal (offsetof (struct nbd_info_export, exportsize), 2);
  assert_int_equal (offsetof (struct nbd_info_export, eflags), 10);
  assert_int_equal (offsetof (struct nbd_info_block_size, maximum), 10);
  assert_int_equal (offsetof (struct nbd_request, flags), 4);
  assert_int_equal (offsetof (struct nbd_request, type), 6);
  assert_int_equal (offsetof (struct nbd_request, cookie), 8);
  assert_int_equal (offsetof (struct nbd_request, offset), 16);
  assert_int_equal (offsetof (struct nbd_request, count), 24);
  assert_int_equal (offsetof (struct nbd_request_ext, count), 24);
  assert_int_equal (offsetof (struct nbd_simple_reply, error), 4);
  assert_int_equal (offsetof (struct nbd_simple_reply, cookie), 8);
  assert_int_equal (offsetof (struct nbd_structured_reply, type), 6);
  assert_int_equal (offsetof (struct nbd_structured_reply, length), 16);
  assert_int_equal (offsetof (struct nbd_extended_reply, offset), 16);
  assert_int_equal (offsetof (struct nbd_extended_reply, length), 24);
  assert_int_equal (offsetof (struct nbd_chunk_error, len), 4);
  assert_int_equal (offsetof (struct nbd_chunk_block_status_ext, count), 4);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_magics),
    cmocka_unit_test (test_handshake_flags),
    cmocka_unit_test (test_transmission_flags),
    cmocka_unit_test (test_options),
    cmocka_unit_test (test_option_replies),
    cmocka_unit_test (test_info),
    cmocka_unit_test (test_commands),
    cmocka_unit_test (test_command_flags),
    cmocka_unit_test (test_reply_types),
    cmocka_unit_test (test_errors),
    cmocka_unit_test (test_states_and_limits),
    cmocka_unit_test (test_struct_sizes),
    cmocka_unit_test (test_field_offsets),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
