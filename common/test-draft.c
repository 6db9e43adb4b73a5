/* nbd-conformance: unit test restating every constant and wire structure
 * of nbd-draft.h as the literal value that specs/resize.md (section 3)
 * gives, so that a typo in the header fails against an independent second
 * copy.  It also checks that the draft's values do not collide with the
 * published ones of nbd-proto.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nbd-proto.h"
#include "nbd-draft.h"

/* "3.1 Constants": the values reserved upstream and the new ones. */
static void
test_constants (void **state)
{
  assert_int_equal (NBD_FLAG_SEND_RESIZE, 0x0200);
  assert_int_equal (NBD_FLAG_AUTO_RESIZE, 0x2000);
  assert_int_equal (NBD_OPT_RESIZE, 12);
  assert_int_equal (NBD_INFO_RESIZE, 4);
  assert_int_equal (NBD_CMD_RESIZE, 8);
  assert_int_equal (NBD_CMD_FLAG_RESIZE_NOTIFY, 0x0040);
  assert_int_equal (NBD_CMD_FLAG_RESIZE_QUERY, 0x0080);
  assert_int_equal (NBD_REPLY_TYPE_RESIZE, 7);
  assert_int_equal (NBD_RESIZE_OPT_LEN, 4);
  assert_int_equal (NBD_RESIZE_INFO_LEN, 22);
  assert_int_equal (NBD_RESIZE_CHUNK_LEN, 16);
  assert_true (NBD_RESIZE_SIZE_MAX == UINT64_C (9223372036854775807));
  assert_true (NBD_RESIZE_SEQ_WINDOW == UINT32_C (2147483648));
  assert_int_equal (NBD_RESIZE_NOTIFY_RATE_DEFAULT, 10);
  assert_int_equal (NBD_RESIZE_CLIENT_FLOOD_LIMIT, 1000);
}

/* "3.2 Feature bits". */
static void
test_feature_bits (void **state)
{
  assert_int_equal (NBD_RESIZE_F_GROW, 0x01);
  assert_int_equal (NBD_RESIZE_F_SHRINK, 0x02);
  assert_int_equal (NBD_RESIZE_F_AUTO_GROW, 0x04);
  assert_int_equal (NBD_RESIZE_F_ZERO_FILL, 0x08);
  assert_int_equal (NBD_RESIZE_F_SIZE_REPLY, 0x10);
  assert_int_equal (NBD_RESIZE_F_QUERY, 0x20);
  assert_int_equal (NBD_RESIZE_F_NOTIFY, 0x40);
  assert_int_equal (NBD_RESIZE_F_EXPORT_WIDE, 0x80);
  assert_int_equal (NBD_RESIZE_MASK_FEATURES, 0xff);
  assert_int_equal (NBD_RESIZE_MASK_NEED_SIZE_REPLY, 0x60);
  assert_int_equal (NBD_RESIZE_MASK_SEND_RESIZE, 0x63);
}

/* "3.3 Event bits". */
static void
test_event_bits (void **state)
{
  assert_int_equal (NBD_RESIZE_EV_GREW, 0x01);
  assert_int_equal (NBD_RESIZE_EV_SHRANK, 0x02);
  assert_int_equal (NBD_RESIZE_EV_ZEROED, 0x04);
  assert_int_equal (NBD_RESIZE_EV_REMOTE, 0x08);
  assert_int_equal (NBD_RESIZE_EV_INITIAL, 0x10);
  assert_int_equal (NBD_RESIZE_EV_CAPPED, 0x20);
  assert_int_equal (NBD_RESIZE_EV_ROUNDED, 0x40);
  assert_int_equal (NBD_RESIZE_MASK_EVENTS, 0x7f);
}

/* "5.1 Request forms": FUA plus the two new flags, nothing else. */
static void
test_cmd_flags (void **state)
{
  assert_int_equal (NBD_RESIZE_MASK_CMD_FLAGS, 0x00c1);
}

/* The draft's values stay clear of the published ones. */
static void
test_no_collisions (void **state)
{
  const uint16_t published_eflags =
    NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_ROTATIONAL | NBD_FLAG_SEND_TRIM |
    NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN |
    NBD_FLAG_SEND_RESIZE | NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO |
    NBD_FLAG_BLOCK_STAT_PAYLOAD;
  const uint16_t published_cmd_flags =
    NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF |
    NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_PAYLOAD_LEN;

  assert_int_equal (published_eflags & NBD_FLAG_AUTO_RESIZE, 0);
  /* Bit 15 stays reserved for "more flags". */
  assert_true (NBD_FLAG_AUTO_RESIZE < (1 << 15));
  assert_int_equal (published_cmd_flags &
                    (NBD_CMD_FLAG_RESIZE_NOTIFY | NBD_CMD_FLAG_RESIZE_QUERY),
                    0);
  assert_true (NBD_OPT_RESIZE > NBD_OPT_EXTENDED_HEADERS);
  assert_true (NBD_INFO_RESIZE > NBD_INFO_BLOCK_SIZE);
  /* Not an error chunk type, and none of the published or historic
   * (3, 4) chunk types.
   */
  assert_int_equal (NBD_REPLY_TYPE_RESIZE & (1 << 15), 0);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE, NBD_REPLY_TYPE_NONE);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE, NBD_REPLY_TYPE_OFFSET_DATA);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE, NBD_REPLY_TYPE_OFFSET_HOLE);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE, 3);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE, 4);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE, NBD_REPLY_TYPE_BLOCK_STATUS);
  assert_int_not_equal (NBD_REPLY_TYPE_RESIZE,
                        NBD_REPLY_TYPE_BLOCK_STATUS_EXT);
  /* Event and feature masks cover exactly the defined bits. */
  assert_int_equal (NBD_RESIZE_MASK_FEATURES,
                    NBD_RESIZE_F_GROW | NBD_RESIZE_F_SHRINK |
                    NBD_RESIZE_F_AUTO_GROW | NBD_RESIZE_F_ZERO_FILL |
                    NBD_RESIZE_F_SIZE_REPLY | NBD_RESIZE_F_QUERY |
                    NBD_RESIZE_F_NOTIFY | NBD_RESIZE_F_EXPORT_WIDE);
  assert_int_equal (NBD_RESIZE_MASK_EVENTS,
                    NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_SHRANK |
                    NBD_RESIZE_EV_ZEROED | NBD_RESIZE_EV_REMOTE |
                    NBD_RESIZE_EV_INITIAL | NBD_RESIZE_EV_CAPPED |
                    NBD_RESIZE_EV_ROUNDED);
}

/* "3.4 Layouts": sizes and field offsets of the packed structs. */
static void
test_struct_layouts (void **state)
{
  assert_int_equal (sizeof (struct nbd_opt_resize), 4);
  assert_int_equal (sizeof (struct nbd_opt_resize), NBD_RESIZE_OPT_LEN);

  assert_int_equal (sizeof (struct nbd_info_resize), 22);
  assert_int_equal (sizeof (struct nbd_info_resize), NBD_RESIZE_INFO_LEN);
  assert_int_equal (offsetof (struct nbd_info_resize, info), 0);
  assert_int_equal (offsetof (struct nbd_info_resize, capabilities), 2);
  assert_int_equal (offsetof (struct nbd_info_resize, active), 6);
  assert_int_equal (offsetof (struct nbd_info_resize, granularity), 10);
  assert_int_equal (offsetof (struct nbd_info_resize, max_size), 14);

  assert_int_equal (sizeof (struct nbd_chunk_resize), 16);
  assert_int_equal (sizeof (struct nbd_chunk_resize), NBD_RESIZE_CHUNK_LEN);
  assert_int_equal (offsetof (struct nbd_chunk_resize, size), 0);
  assert_int_equal (offsetof (struct nbd_chunk_resize, events), 8);
  assert_int_equal (offsetof (struct nbd_chunk_resize, sequence), 12);
}

/* A worked example of the chunk in network byte order: size 1 GiB,
 * GREW|ZEROED|ROUNDED, sequence 0xfffffff1.
 */
static void
test_chunk_bytes (void **state)
{
  static const unsigned char wire[16] = {
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x45,
    0xff, 0xff, 0xff, 0xf1,
  };
  uint64_t size = 0;
  uint32_t events = 0, sequence = 0;
  size_t i;

  for (i = 0; i < 8; i++)
    size = size << 8 | wire[i];
  for (i = 8; i < 12; i++)
    events = events << 8 | wire[i];
  for (i = 12; i < 16; i++)
    sequence = sequence << 8 | wire[i];
  assert_true (size == UINT64_C (1) << 30);
  assert_int_equal (events, NBD_RESIZE_EV_GREW | NBD_RESIZE_EV_ZEROED |
                    NBD_RESIZE_EV_ROUNDED);
  assert_int_equal (events & ~NBD_RESIZE_MASK_EVENTS, 0);
  assert_true (sequence == UINT32_C (0xfffffff1));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_constants),
    cmocka_unit_test (test_feature_bits),
    cmocka_unit_test (test_event_bits),
    cmocka_unit_test (test_cmd_flags),
    cmocka_unit_test (test_no_collisions),
    cmocka_unit_test (test_struct_layouts),
    cmocka_unit_test (test_chunk_bytes),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
