/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"
#include "macro.h"

static void test_safe_text_is_kept_as_it_is(void **state) {
        _cleanup_free_ char *a = text_escape("web-1 ünïcødé 日本 🙂 \\x41 \"q\"");

        assert_true(text_is_safe(NULL));
        assert_true(text_is_safe(""));
        assert_true(text_is_safe("web-1 ünïcødé 日本 🙂"));
        assert_string_equal(a, "web-1 ünïcødé 日本 🙂 \\x41 \"q\"");
}

static void test_controls_escapes_c1_and_invalid_utf8_are_escaped(void **state) {
        _cleanup_free_ char *a = text_escape("a\033[31mred\nfake\tline\x7f");
        _cleanup_free_ char *b = text_escape("\xc2\x9b" "2J \xff \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82");
        _cleanup_free_ char *c = text_escape(NULL);

        assert_false(text_is_safe("a\033[31m"));
        assert_false(text_is_safe("\xc2\x9b"));
        assert_false(text_is_safe("\xff"));
        assert_string_equal(a, "a\\x1b[31mred\\x0afake\\x09line\\x7f");
        /* C1 CSI, a stray byte, an overlong '/', a surrogate, above U+10FFFF, a cut sequence. */
        assert_string_equal(b, "\\xc2\\x9b2J \\xff \\xc0\\xaf \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80 \\xe2\\x82");
        assert_true(text_is_safe(a));
        assert_true(text_is_safe(b));
        assert_string_equal(c, "");
}

static void test_mask_keeps_the_width_and_never_cuts_a_character(void **state) {
        char out[17];

        text_mask("evil\n1 fake", 16, out);
        assert_string_equal(out, "evil?1 fake");
        text_mask("abcdefghijklmno\xc3\xa9", 16, out); /* "é" would end past byte 16 */
        assert_string_equal(out, "abcdefghijklmno?");
        text_mask(NULL, 16, out);
        assert_string_equal(out, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_safe_text_is_kept_as_it_is),
                cmocka_unit_test(test_controls_escapes_c1_and_invalid_utf8_are_escaped),
                cmocka_unit_test(test_mask_keeps_the_width_and_never_cuts_a_character),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
