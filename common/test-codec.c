/* nbd-conformance: unit tests of common/codec.c and the generated name
 * tables: byte order helpers, request/reply/option headers against known
 * byte vectors, block status and error chunk payloads (including bad
 * lengths), names of every constant, flag formatting, errno mapping.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

static void
test_byte_order (void **state)
{
  unsigned char b[9] = { 0 };

  nbdp_put16 (b + 1, 0x1234);
  assert_memory_equal (b + 1, "\x12\x34", 2);
  assert_int_equal (nbdp_get16 (b + 1), 0x1234);
  nbdp_put32 (b + 1, 0x89abcdef);
  assert_memory_equal (b + 1, "\x89\xab\xcd\xef", 4);
  assert_int_equal (nbdp_get32 (b + 1), 0x89abcdef);
  nbdp_put64 (b + 1, UINT64_C (0x0102030405060708));
  assert_memory_equal (b + 1, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  assert_true (nbdp_get64 (b + 1) == UINT64_C (0x0102030405060708));
}

static void
test_request_compact (void **state)
{
  static const unsigned char want[28] = {
    0x25, 0x60, 0x95, 0x13,     /* magic */
    0x00, 0x01,                 /* flags FUA */
    0x00, 0x01,                 /* WRITE */
    0, 0, 0, 0, 0, 0, 0x12, 0x34,
    0, 0, 0, 1, 0, 0, 0, 0,     /* offset 4 GiB */
    0x00, 0x00, 0x10, 0x00,     /* 4096 */
  };
  struct nbdp_request req = {
    .magic = NBD_REQUEST_MAGIC, .flags = NBD_CMD_FLAG_FUA,
    .type = NBD_CMD_WRITE, .cookie = 0x1234,
    .offset = UINT64_C (1) << 32, .count = 4096,
  }, back;
  unsigned char b[32];

  assert_int_equal (nbdp_encode_request (b, &req, false), 28);
  assert_memory_equal (b, want, 28);
  nbdp_decode_request (b, false, &back);
  assert_memory_equal (&back, &req, sizeof req);

  /* Compact form truncates a 64-bit count on purpose. */
  req.count = UINT64_C (0x100000002);
  nbdp_encode_request (b, &req, false);
  assert_int_equal (nbdp_get32 (b + 24), 2);
}

static void
test_request_extended (void **state)
{
  struct nbdp_request req = {
    .magic = NBD_EXTENDED_REQUEST_MAGIC, .flags = NBD_CMD_FLAG_PAYLOAD_LEN,
    .type = NBD_CMD_BLOCK_STATUS, .cookie = UINT64_MAX,
    .offset = 7, .count = UINT64_C (0x123456789a),
  }, back;
  unsigned char b[32];

  assert_int_equal (nbdp_encode_request (b, &req, true), 32);
  assert_memory_equal (b, "\x21\xe4\x1c\x71\x00\x20\x00\x07", 8);
  assert_memory_equal (b + 24, "\x00\x00\x00\x12\x34\x56\x78\x9a", 8);
  nbdp_decode_request (b, true, &back);
  assert_memory_equal (&back, &req, sizeof req);

  /* Bad magic is kept as given. */
  req.magic = 0xdeadbeef;
  nbdp_encode_request (b, &req, true);
  nbdp_decode_request (b, true, &back);
  assert_int_equal (back.magic, 0xdeadbeef);
}

static void
test_reply_simple (void **state)
{
  static const unsigned char want[16] = {
    0x67, 0x44, 0x66, 0x98, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9,
  };
  struct nbdp_reply r = { .kind = NBDP_REPLY_SIMPLE,
                          .magic = NBD_SIMPLE_REPLY_MAGIC,
                          .error = NBD_EIO, .cookie = 9 }, back;
  unsigned char b[32];

  assert_int_equal (nbdp_encode_reply (b, &r), 16);
  assert_memory_equal (b, want, 16);
  assert_int_equal (nbdp_reply_header_size (nbdp_get32 (b)), 16);
  assert_true (nbdp_decode_reply (b, &back));
  assert_memory_equal (&back, &r, sizeof r);
}

static void
test_reply_structured (void **state)
{
  static const unsigned char want[20] = {
    0x66, 0x8e, 0x33, 0xef, 0x00, 0x01, 0x00, 0x02,
    0, 0, 0, 0, 0, 0, 0, 3, 0x00, 0x00, 0x00, 0x0c,
  };
  struct nbdp_reply r = { .kind = NBDP_REPLY_STRUCTURED,
                          .magic = NBD_STRUCTURED_REPLY_MAGIC,
                          .flags = NBD_REPLY_FLAG_DONE,
                          .type = NBD_REPLY_TYPE_OFFSET_HOLE,
                          .cookie = 3, .length = 12 }, back;
  unsigned char b[32];

  assert_int_equal (nbdp_encode_reply (b, &r), 20);
  assert_memory_equal (b, want, 20);
  assert_int_equal (nbdp_reply_header_size (nbdp_get32 (b)), 20);
  assert_true (nbdp_decode_reply (b, &back));
  assert_memory_equal (&back, &r, sizeof r);
}

static void
test_reply_extended (void **state)
{
  struct nbdp_reply r = { .kind = NBDP_REPLY_EXTENDED,
                          .magic = NBD_EXTENDED_REPLY_MAGIC,
                          .flags = 0, .type = NBD_REPLY_TYPE_ERROR_OFFSET,
                          .cookie = 77, .offset = UINT64_C (1) << 40,
                          .length = UINT64_C (1) << 33 }, back;
  unsigned char b[32];

  assert_int_equal (nbdp_encode_reply (b, &r), 32);
  assert_memory_equal (b, "\x6e\x8a\x27\x8c\x00\x00\x80\x02", 8);
  assert_memory_equal (b + 24, "\x00\x00\x00\x02\x00\x00\x00\x00", 8);
  assert_int_equal (nbdp_reply_header_size (nbdp_get32 (b)), 32);
  assert_true (nbdp_decode_reply (b, &back));
  assert_memory_equal (&back, &r, sizeof r);
}

static void
test_reply_bad_magic (void **state)
{
  unsigned char b[32] = { 0x25, 0x60, 0x95, 0x13 };
  struct nbdp_reply r;

  assert_int_equal (nbdp_reply_header_size (NBD_REQUEST_MAGIC), 0);
  assert_int_equal (nbdp_reply_header_size (0), 0);
  assert_false (nbdp_decode_reply (b, &r));
  assert_int_equal (r.magic, NBD_REQUEST_MAGIC);
}

static void
test_options (void **state)
{
  static const unsigned char want_opt[16] = {
    'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 0, 0, 7, 0, 0, 0, 0x10,
  };
  static const unsigned char want_rep[20] = {
    0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9,
    0, 0, 0, 7, 0x80, 0, 0, 6, 0, 0, 0, 0,
  };
  struct nbdp_option o = { NBD_NEW_VERSION, NBD_OPT_GO, 16 }, ob;
  struct nbdp_option_reply r = { NBD_REP_MAGIC, NBD_OPT_GO,
                                 NBD_REP_ERR_UNKNOWN, 0 }, rb;
  unsigned char b[20];

  nbdp_encode_option (b, &o);
  assert_memory_equal (b, want_opt, 16);
  nbdp_decode_option (b, &ob);
  assert_true (ob.magic == o.magic);
  assert_int_equal (ob.option, o.option);
  assert_int_equal (ob.length, o.length);
  nbdp_encode_option_reply (b, &r);
  assert_memory_equal (b, want_rep, 20);
  nbdp_decode_option_reply (b, &rb);
  assert_true (rb.magic == r.magic);
  assert_int_equal (rb.option, r.option);
  assert_int_equal (rb.reply, r.reply);
  assert_int_equal (rb.length, r.length);
}

static void
test_block_status_compact (void **state)
{
  unsigned char p[4 + 3 * 8];
  struct nbdp_extent e[3];
  uint32_t id;
  size_t n;

  nbdp_put32 (p, 42);
  nbdp_put32 (p + 4, 4096);  nbdp_put32 (p + 8, 0);
  nbdp_put32 (p + 12, 512);  nbdp_put32 (p + 16, NBD_STATE_HOLE);
  nbdp_put32 (p + 20, 1024); nbdp_put32 (p + 24, 3);
  assert_true (nbdp_decode_block_status (p, sizeof p, false, &id, e, 3, &n));
  assert_int_equal (id, 42);
  assert_int_equal (n, 3);
  assert_int_equal (e[0].length, 4096);
  assert_int_equal (e[1].flags, NBD_STATE_HOLE);
  assert_int_equal (e[2].length, 1024);
  assert_int_equal (e[2].flags, 3);

  /* Fewer slots than descriptors: n still counts all. */
  memset (e, 0, sizeof e);
  assert_true (nbdp_decode_block_status (p, sizeof p, false, &id, e, 1, &n));
  assert_int_equal (n, 3);
  assert_int_equal (e[0].length, 4096);
  assert_int_equal (e[1].length, 0);
  assert_true (nbdp_decode_block_status (p, sizeof p, false, &id, NULL, 0,
                                         &n));
  assert_int_equal (n, 3);

  /* Bad lengths: no descriptor, partial descriptor, short header. */
  assert_false (nbdp_decode_block_status (p, 4, false, &id, e, 3, &n));
  assert_false (nbdp_decode_block_status (p, 11, false, &id, e, 3, &n));
  assert_false (nbdp_decode_block_status (p, 13, false, &id, e, 3, &n));
  assert_false (nbdp_decode_block_status (p, 3, false, &id, e, 3, &n));
  assert_false (nbdp_decode_block_status (p, 0, false, &id, e, 3, &n));
}

static void
test_block_status_extended (void **state)
{
  unsigned char p[8 + 2 * 16];
  struct nbdp_extent e[2];
  uint32_t id;
  size_t n;

  nbdp_put32 (p, 1);
  nbdp_put32 (p + 4, 2);
  nbdp_put64 (p + 8, UINT64_C (1) << 40);
  nbdp_put64 (p + 16, NBD_STATE_ZERO);
  nbdp_put64 (p + 24, 1);
  nbdp_put64 (p + 32, UINT64_C (1) << 63);
  assert_true (nbdp_decode_block_status (p, sizeof p, true, &id, e, 2, &n));
  assert_int_equal (id, 1);
  assert_int_equal (n, 2);
  assert_true (e[0].length == UINT64_C (1) << 40);
  assert_int_equal (e[0].flags, NBD_STATE_ZERO);
  assert_true (e[1].flags == UINT64_C (1) << 63);

  /* Descriptor count disagrees with the length. */
  nbdp_put32 (p + 4, 3);
  assert_false (nbdp_decode_block_status (p, sizeof p, true, &id, e, 2, &n));
  nbdp_put32 (p + 4, 1);
  assert_false (nbdp_decode_block_status (p, sizeof p, true, &id, e, 2, &n));
  assert_true (nbdp_decode_block_status (p, 24, true, &id, e, 2, &n));
  assert_int_equal (n, 1);
  /* Zero descriptors, ragged sizes. */
  nbdp_put32 (p + 4, 0);
  assert_false (nbdp_decode_block_status (p, 8, true, &id, e, 2, &n));
  assert_false (nbdp_decode_block_status (p, 7, true, &id, e, 2, &n));
  nbdp_put32 (p + 4, 1);
  assert_false (nbdp_decode_block_status (p, 8 + 8, true, &id, e, 2, &n));
  assert_false (nbdp_decode_block_status (p, 8 + 17, true, &id, e, 2, &n));
}

static void
test_error_chunk (void **state)
{
  unsigned char p[6 + 5 + 8];
  uint32_t err;
  const char *msg;
  uint16_t ml;
  uint64_t off = 0;

  nbdp_put32 (p, NBD_EIO);
  nbdp_put16 (p + 4, 5);
  memcpy (p + 6, "hello", 5);
  nbdp_put64 (p + 11, 8192);

  assert_true (nbdp_decode_error_chunk (p, 11, NBD_REPLY_TYPE_ERROR,
                                        &err, &msg, &ml, &off));
  assert_int_equal (err, NBD_EIO);
  assert_int_equal (ml, 5);
  assert_memory_equal (msg, "hello", 5);

  assert_true (nbdp_decode_error_chunk (p, 19, NBD_REPLY_TYPE_ERROR_OFFSET,
                                        &err, &msg, &ml, &off));
  assert_int_equal (off, 8192);

  /* Inconsistent lengths. */
  assert_false (nbdp_decode_error_chunk (p, 5, NBD_REPLY_TYPE_ERROR,
                                         &err, &msg, &ml, &off));
  assert_false (nbdp_decode_error_chunk (p, 10, NBD_REPLY_TYPE_ERROR,
                                         &err, &msg, &ml, &off));
  assert_false (nbdp_decode_error_chunk (p, 12, NBD_REPLY_TYPE_ERROR,
                                         &err, &msg, &ml, &off));
  assert_false (nbdp_decode_error_chunk (p, 11, NBD_REPLY_TYPE_ERROR_OFFSET,
                                         &err, &msg, &ml, &off));
  assert_false (nbdp_decode_error_chunk (p, 18, NBD_REPLY_TYPE_ERROR_OFFSET,
                                         &err, &msg, &ml, &off));
  /* A message length far beyond the payload. */
  nbdp_put16 (p + 4, 0xffff);
  assert_false (nbdp_decode_error_chunk (p, sizeof p, NBD_REPLY_TYPE_ERROR,
                                         &err, &msg, &ml, &off));
  /* Empty message. */
  nbdp_put16 (p + 4, 0);
  assert_true (nbdp_decode_error_chunk (p, 6, NBD_REPLY_TYPE_ERROR,
                                        &err, &msg, &ml, &off));
  assert_int_equal (ml, 0);
  /* Unknown error types may carry trailing fields. */
  assert_true (nbdp_decode_error_chunk (p, 10, NBD_REPLY_TYPE_ERR (7),
                                        &err, &msg, &ml, &off));
  /* A non-error type is not an error chunk. */
  assert_false (nbdp_decode_error_chunk (p, 6, NBD_REPLY_TYPE_OFFSET_DATA,
                                         &err, &msg, &ml, &off));
}

#define NAME(fn, c) assert_string_equal (fn (c), #c)

static void
test_names (void **state)
{
  char buf[64];

  NAME (nbdp_name_of_opt, NBD_OPT_EXPORT_NAME);
  NAME (nbdp_name_of_opt, NBD_OPT_ABORT);
  NAME (nbdp_name_of_opt, NBD_OPT_LIST);
  NAME (nbdp_name_of_opt, NBD_OPT_PEEK_EXPORT);
  NAME (nbdp_name_of_opt, NBD_OPT_STARTTLS);
  NAME (nbdp_name_of_opt, NBD_OPT_INFO);
  NAME (nbdp_name_of_opt, NBD_OPT_GO);
  NAME (nbdp_name_of_opt, NBD_OPT_STRUCTURED_REPLY);
  NAME (nbdp_name_of_opt, NBD_OPT_LIST_META_CONTEXT);
  NAME (nbdp_name_of_opt, NBD_OPT_SET_META_CONTEXT);
  NAME (nbdp_name_of_opt, NBD_OPT_EXTENDED_HEADERS);
  assert_null (nbdp_name_of_opt (0));
  assert_null (nbdp_name_of_opt (12345));

  NAME (nbdp_name_of_rep, NBD_REP_ACK);
  NAME (nbdp_name_of_rep, NBD_REP_SERVER);
  NAME (nbdp_name_of_rep, NBD_REP_INFO);
  NAME (nbdp_name_of_rep, NBD_REP_META_CONTEXT);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_UNSUP);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_POLICY);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_INVALID);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_PLATFORM);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_TLS_REQD);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_UNKNOWN);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_SHUTDOWN);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_BLOCK_SIZE_REQD);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_TOO_BIG);
  NAME (nbdp_name_of_rep, NBD_REP_ERR_EXT_HEADER_REQD);
  assert_null (nbdp_name_of_rep (NBD_REP_ERR (99)));

  NAME (nbdp_name_of_info, NBD_INFO_EXPORT);
  NAME (nbdp_name_of_info, NBD_INFO_NAME);
  NAME (nbdp_name_of_info, NBD_INFO_DESCRIPTION);
  NAME (nbdp_name_of_info, NBD_INFO_BLOCK_SIZE);
  assert_null (nbdp_name_of_info (200));

  NAME (nbdp_name_of_cmd, NBD_CMD_READ);
  NAME (nbdp_name_of_cmd, NBD_CMD_WRITE);
  NAME (nbdp_name_of_cmd, NBD_CMD_DISC);
  NAME (nbdp_name_of_cmd, NBD_CMD_FLUSH);
  NAME (nbdp_name_of_cmd, NBD_CMD_TRIM);
  NAME (nbdp_name_of_cmd, NBD_CMD_CACHE);
  NAME (nbdp_name_of_cmd, NBD_CMD_WRITE_ZEROES);
  NAME (nbdp_name_of_cmd, NBD_CMD_BLOCK_STATUS);
  NAME (nbdp_name_of_cmd, NBD_CMD_RESIZE);
  assert_null (nbdp_name_of_cmd (200));

  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_NONE);
  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_OFFSET_DATA);
  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_OFFSET_HOLE);
  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_BLOCK_STATUS);
  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_BLOCK_STATUS_EXT);
  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_ERROR);
  NAME (nbdp_name_of_reply_type, NBD_REPLY_TYPE_ERROR_OFFSET);
  assert_null (nbdp_name_of_reply_type (3));

  NAME (nbdp_name_of_error, NBD_SUCCESS);
  NAME (nbdp_name_of_error, NBD_EPERM);
  NAME (nbdp_name_of_error, NBD_EIO);
  NAME (nbdp_name_of_error, NBD_ENOMEM);
  NAME (nbdp_name_of_error, NBD_EINVAL);
  NAME (nbdp_name_of_error, NBD_ENOSPC);
  NAME (nbdp_name_of_error, NBD_EOVERFLOW);
  NAME (nbdp_name_of_error, NBD_ENOTSUP);
  NAME (nbdp_name_of_error, NBD_ESHUTDOWN);
  assert_null (nbdp_name_of_error (2));

  assert_string_equal (nbdp_name_or (nbdp_name_of_opt (99), buf, sizeof buf,
                                     99), "0x63");
  assert_string_equal (nbdp_name_or ("X", buf, sizeof buf, 1), "X");

  /* The name-or-number formatters. */
  assert_string_equal (nbdp_opt_str (buf, sizeof buf, NBD_OPT_GO),
                       "NBD_OPT_GO");
  assert_string_equal (nbdp_opt_str (buf, sizeof buf, 99), "0x63");
  assert_string_equal (nbdp_rep_str (buf, sizeof buf, NBD_REP_ERR_UNSUP),
                       "NBD_REP_ERR_UNSUP");
  assert_string_equal (nbdp_info_str (buf, sizeof buf, 200), "0xc8");
  assert_string_equal (nbdp_cmd_str (buf, sizeof buf, NBD_CMD_TRIM),
                       "NBD_CMD_TRIM");
  assert_string_equal (nbdp_reply_type_str (buf, sizeof buf,
                                            NBD_REPLY_TYPE_ERROR),
                       "NBD_REPLY_TYPE_ERROR");
  assert_string_equal (nbdp_error_str (buf, sizeof buf, 2), "0x2");
}

static void
test_flag_strings (void **state)
{
  char buf[256], small[8];

  assert_string_equal (nbdp_flags_str (buf, sizeof buf, 0), "0");
  assert_string_equal (nbdp_flags_str (buf, sizeof buf,
                                       NBD_FLAG_HAS_FLAGS |
                                       NBD_FLAG_SEND_FLUSH | 0x8000),
                       "HAS_FLAGS|SEND_FLUSH|0x8000");
  assert_string_equal (nbdp_flags_str (buf, sizeof buf, 0x1fff),
                       "HAS_FLAGS|READ_ONLY|SEND_FLUSH|SEND_FUA|ROTATIONAL|"
                       "SEND_TRIM|SEND_WRITE_ZEROES|SEND_DF|CAN_MULTI_CONN|"
                       "SEND_RESIZE|SEND_CACHE|SEND_FAST_ZERO|"
                       "BLOCK_STAT_PAYLOAD");
  assert_string_equal (nbdp_cmd_flags_str (buf, sizeof buf, 0x3f),
                       "FUA|NO_HOLE|DF|REQ_ONE|FAST_ZERO|PAYLOAD_LEN");
  assert_string_equal (nbdp_cmd_flags_str (buf, sizeof buf, 0x8000),
                       "0x8000");
  assert_string_equal (nbdp_gflags_str (buf, sizeof buf, 3),
                       "FIXED_NEWSTYLE|NO_ZEROES");
  assert_string_equal (nbdp_cflags_str (buf, sizeof buf, 0x80000001),
                       "FIXED_NEWSTYLE|0x80000000");
  assert_string_equal (nbdp_reply_flags_str (buf, sizeof buf, 1), "DONE");
  assert_string_equal (nbdp_state_str (buf, sizeof buf, 3), "HOLE|ZERO");
  /* Truncation stays NUL terminated. */
  nbdp_flags_str (small, sizeof small, 0x1fff);
  assert_true (strlen (small) < sizeof small);
}

static void
test_errno_mapping (void **state)
{
  assert_int_equal (nbdp_errno_to_nbd (0), NBD_SUCCESS);
  assert_int_equal (nbdp_errno_to_nbd (EPERM), NBD_EPERM);
  assert_int_equal (nbdp_errno_to_nbd (EROFS), NBD_EPERM);
  assert_int_equal (nbdp_errno_to_nbd (EIO), NBD_EIO);
  assert_int_equal (nbdp_errno_to_nbd (ENOMEM), NBD_ENOMEM);
  assert_int_equal (nbdp_errno_to_nbd (EINVAL), NBD_EINVAL);
  assert_int_equal (nbdp_errno_to_nbd (ENOSPC), NBD_ENOSPC);
  assert_int_equal (nbdp_errno_to_nbd (EDQUOT), NBD_ENOSPC);
  assert_int_equal (nbdp_errno_to_nbd (EFBIG), NBD_ENOSPC);
  assert_int_equal (nbdp_errno_to_nbd (EOVERFLOW), NBD_EOVERFLOW);
  assert_int_equal (nbdp_errno_to_nbd (ENOTSUP), NBD_ENOTSUP);
  assert_int_equal (nbdp_errno_to_nbd (EOPNOTSUPP), NBD_ENOTSUP);
  assert_int_equal (nbdp_errno_to_nbd (ESHUTDOWN), NBD_ESHUTDOWN);
  assert_int_equal (nbdp_errno_to_nbd (ENOENT), NBD_EINVAL);
  assert_int_equal (nbdp_errno_to_nbd (-1), NBD_EINVAL);

  assert_int_equal (nbdp_nbd_to_errno (NBD_SUCCESS), 0);
  assert_int_equal (nbdp_nbd_to_errno (NBD_EPERM), EPERM);
  assert_int_equal (nbdp_nbd_to_errno (NBD_EIO), EIO);
  assert_int_equal (nbdp_nbd_to_errno (NBD_ENOMEM), ENOMEM);
  assert_int_equal (nbdp_nbd_to_errno (NBD_EINVAL), EINVAL);
  assert_int_equal (nbdp_nbd_to_errno (NBD_ENOSPC), ENOSPC);
  assert_int_equal (nbdp_nbd_to_errno (NBD_EOVERFLOW), EOVERFLOW);
  assert_int_equal (nbdp_nbd_to_errno (NBD_ENOTSUP), ENOTSUP);
  assert_int_equal (nbdp_nbd_to_errno (NBD_ESHUTDOWN), ESHUTDOWN);
  assert_int_equal (nbdp_nbd_to_errno (2), EINVAL);
  assert_int_equal (nbdp_nbd_to_errno (UINT32_MAX), EINVAL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_byte_order),
    cmocka_unit_test (test_request_compact),
    cmocka_unit_test (test_request_extended),
    cmocka_unit_test (test_reply_simple),
    cmocka_unit_test (test_reply_structured),
    cmocka_unit_test (test_reply_extended),
    cmocka_unit_test (test_reply_bad_magic),
    cmocka_unit_test (test_options),
    cmocka_unit_test (test_block_status_compact),
    cmocka_unit_test (test_block_status_extended),
    cmocka_unit_test (test_error_chunk),
    cmocka_unit_test (test_names),
    cmocka_unit_test (test_flag_strings),
    cmocka_unit_test (test_errno_mapping),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
