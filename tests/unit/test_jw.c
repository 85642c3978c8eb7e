/*
 * test_jw.c - the read API's JSON writer against jansson as the reader:
 * whatever bytes a string holds, the output parses, and valid UTF-8 comes
 * back unchanged (a model test over random strings, plus the edge cases).
 */
#include "fl_jw.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The string fl_jw writes for s, read back by jansson (caller frees), or
 * NULL when jansson refuses the output. */
static char *round_trip(const char *s)
{
    fl_jw_t w;
    size_t len;
    char *doc, *out = NULL;
    json_t *j;

    fl_jw_init(&w);
    fl_jw_lit(&w, "[");
    fl_jw_str(&w, s);
    fl_jw_lit(&w, "]");
    doc = fl_jw_take(&w, &len);
    cr_assert_not_null(doc);
    cr_assert_eq(strlen(doc), len);
    j = json_loads(doc, JSON_REJECT_DUPLICATES, NULL);
    if (j && json_is_string(json_array_get(j, 0)))
        out = strdup(json_string_value(json_array_get(j, 0)));
    json_decref(j);
    free(doc);
    return out;
}

Test(jw, escapes_what_rfc8259_asks)
{
    const char *cases[] = {"",
                           "plain",
                           "quote \" and \\ backslash",
                           "tab\tnew\nline\rcr",
                           "\x01\x1f control",
                           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                           "</script>"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = round_trip(cases[i]);
        cr_assert_not_null(got, "case %zu did not parse", i);
        cr_assert_str_eq(got, cases[i]);
        free(got);
    }
}

Test(jw, invalid_utf8_becomes_replacement_characters)
{
    const char *bad[] = {"\xff",     "caf\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xe2\x82", "ok\x80ok"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *got = round_trip(bad[i]);
        cr_assert_not_null(got, "invalid case %zu made invalid JSON", i);
        cr_assert(strstr(got, "\xef\xbf\xbd"), "case %zu: no U+FFFD in '%s'", i, got);
        free(got);
    }
}

Test(jw, numbers_ids_and_null)
{
    fl_jw_t w;
    size_t len;
    char *doc;

    fl_jw_init(&w);
    fl_jw_lit(&w, "[");
    fl_jw_int(&w, INT64_MIN);
    fl_jw_lit(&w, ",");
    fl_jw_id(&w, INT64_MAX);
    fl_jw_lit(&w, ",");
    fl_jw_str(&w, NULL);
    fl_jw_lit(&w, "]");
    doc = fl_jw_take(&w, &len);
    cr_assert_str_eq(doc, "[-9223372036854775808,\"9223372036854775807\",null]");
    free(doc);
}

/* Random bytes: always valid JSON; and when the input is valid UTF-8 (as
 * jansson judges it), the same string comes back. */
Test(jw, model_random_strings)
{
    srand(7);
    for (int n = 0; n < 20000; n++) {
        char s[40];
        size_t len = (size_t)(rand() % 39);
        for (size_t i = 0; i < len; i++) {
            int r = rand() % 4;
            s[i] = (char)(r == 0   ? 1 + rand() % 255
                          : r == 1 ? 0x20 + rand() % 95
                          : r == 2 ? 0x80 + rand() % 64
                                   : 0xc2 + rand() % 30);
        }
        s[len] = '\0';
        char *got = round_trip(s);
        cr_assert_not_null(got, "random string %d made invalid JSON", n);
        json_t *valid = json_string(s); /* NULL unless s is valid UTF-8 */
        if (valid)
            cr_assert_str_eq(got, s, "random valid string %d changed", n);
        json_decref(valid);
        free(got);
    }
}
