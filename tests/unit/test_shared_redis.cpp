// What the hosts share through Redis: the address syntax of twostep_redis,
// the password file, the keys of the lockout counters and the revocation
// messages, which come from the network and are never trusted.
#include <string>

#include "core/shared_redis.h"
#include "unit.h"

using namespace twostep::redis;

START_TEST(targets)
{
    std::string error;

    auto t = parse_target("redis://10.0.0.5:6380/3", error);
    ck_assert(t && !t->unix_socket && !t->tls);
    ck_assert_string_eq(t->address, "10.0.0.5:6380");
    ck_assert_string_eq(t->host, "10.0.0.5");
    ck_assert_int_eq(t->db, 3);

    t = parse_target("redis://cache.example", error);
    ck_assert(t);
    ck_assert_string_eq(t->address, "cache.example:6379");
    ck_assert_int_eq(t->db, 0);

    t = parse_target("redis://[::1]/1", error);
    ck_assert(t);
    ck_assert_string_eq(t->address, "[::1]:6379");
    ck_assert_string_eq(t->host, "::1");

    // TLS: the certificate must name the host as written here.
    t = parse_target("rediss://cache.example:6380/2", error);
    ck_assert(t && t->tls);
    ck_assert_string_eq(t->address, "cache.example:6380");
    ck_assert_string_eq(t->host, "cache.example");
    ck_assert_int_eq(t->db, 2);

    t = parse_target("rediss://[2001:db8::5]", error);
    ck_assert(t && t->tls);
    ck_assert_string_eq(t->address, "[2001:db8::5]:6379");
    ck_assert_string_eq(t->host, "2001:db8::5");

    t = parse_target("unix:/run/redis/redis.sock", error);
    ck_assert(t && t->unix_socket);
    ck_assert_string_eq(t->address, "/run/redis/redis.sock");
}
END_TEST

START_TEST(bad_targets)
{
    const char *bad[] = {
        "rediss://", "rediss://:6379", "http://host", "redis://",
        "redis:///0",
        "redis://host/x", "redis://host/-1", "redis://host/01",
        "redis://user:pw@host", "redis://host?db=1", "unix:", "unix:rel",
        "",
    };
    for (const char *url : bad) {
        std::string error;
        ck_assert_msg(!parse_target(url, error), "accepted %s", url);
        ck_assert_msg(!error.empty(), "no reason for %s", url);
    }
}
END_TEST

START_TEST(password_files)
{
    std::string error;
    ck_assert_string_eq(password_from_file("pw\n", error), "pw");
    ck_assert(error.empty());
    ck_assert_string_eq(password_from_file("pw with space\r\n", error),
                        "pw with space");
    password_from_file("\n", error);
    ck_assert(!error.empty());
    password_from_file("a\nb\n", error);
    ck_assert(!error.empty());
}
END_TEST

START_TEST(counter_keys)
{
    Counters c = counters("site:", "alice", "192.0.2.1", 5, 50, 20);
    ck_assert_string_eq(c.keys[0], "site:a:192.0.2.1");
    ck_assert_string_eq(c.keys[1], "site:f:alice 192.0.2.1");
    ck_assert_string_eq(c.keys[2], "site:u:alice");
    ck_assert_int_eq(c.max[0], 50);
    ck_assert_int_eq(c.max[1], 5);
    ck_assert_int_eq(c.max[2], 20);

    Argv a = record_failure(c, 300, 1000);
    ck_assert_string_eq(a[0], "EVAL");
    ck_assert_string_eq(a[2], "3");
    ck_assert_string_eq(a[3], c.keys[0]);
    // now, lock time, then each counter's maximum in key order
    ck_assert_string_eq(a[6], "1000");
    ck_assert_string_eq(a[7], "300");
    ck_assert_string_eq(a[8], "50");
    ck_assert_string_eq(a[9], "5");
    ck_assert_string_eq(a[10], "20");
}
END_TEST

START_TEST(pause_keys)
{
    // The fraud pause: one key, locked by its first "failure".
    Counters c = pause_counters("site:", "p:alice tag");
    for (int i = 0; i < 3; i++) {
        ck_assert_string_eq(c.keys[i], "site:p:alice tag");
        ck_assert_int_eq(c.max[i], 1);
    }
    Argv a = record_failure(c, 900, 1000);
    ck_assert_string_eq(a[7], "900");
    ck_assert_string_eq(a[8], "1");
    Argv check = lock_check(c, 1000);
    ck_assert_str_eq(check[3].c_str(), "site:p:alice tag");
}
END_TEST

START_TEST(approval_and_limit_keys)
{
    // A self-hosted push's transaction: opened as waiting (1), only if
    // absent; decided with its expiry; read as a number.
    Argv open = open_approval("site:", "TX_1", 120);
    ck_assert_string_eq(open[0], "EVAL");
    ck_assert_string_eq(open[2], "1");
    ck_assert_string_eq(open[3], "site:x:TX_1");
    ck_assert_string_eq(open[4], "1");
    ck_assert_string_eq(open[5], "120");
    ck_assert(open[1].find("'NX'") != std::string::npos);
    ck_assert_string_eq(open_approval("site:", "TX_1", 0)[5], "1");

    Argv decide = decide_approval("site:", "TX_1", "4.MAC", 1700000120);
    ck_assert_string_eq(decide[3], "site:x:TX_1");
    ck_assert_string_eq(decide[4], "4.MAC");
    ck_assert_string_eq(decide[5], "1700000120");
    ck_assert_string_eq(approval_state("site:", "TX_1")[3], "site:x:TX_1");

    // Claims keep their own key space.
    Argv claim = claim_transaction("site:", "TX_1", 60);
    ck_assert_string_eq(claim[3], "site:d:TX_1");
    ck_assert_string_eq(claim[5], "60");

    // Push, call and text limits: the waiting request, then the count.
    Argv start = start_out_of_band("site:", "alice", 3, 600, 60);
    ck_assert_string_eq(start[2], "2");
    ck_assert_string_eq(start[3], "site:o:alice");
    ck_assert_string_eq(start[4], "site:n:alice");
    ck_assert_string_eq(start[5], "3");
    ck_assert_string_eq(start[6], "600");
    ck_assert_string_eq(start[7], "60");
    // Nothing to replace; held as "1" until bound to its transaction.
    ck_assert_string_eq(start[8], "");
    ck_assert_string_eq(start[9], "1");
    // Only the transaction that holds the place gives way (the script
    // compares, it never deletes blindly), to one known at the start.
    Argv replace = start_out_of_band("site:", "alice", 3, 600, 60, "TX_0",
                                     "TX_2");
    ck_assert_string_eq(replace[8], "TX_0");
    ck_assert_string_eq(replace[9], "TX_2");
    ck_assert(replace[1].find("held ~= ARGV[4]") != std::string::npos);
    ck_assert(replace[1].find("DEL") == std::string::npos);
    Argv end = end_out_of_band("site:", "alice");
    ck_assert_string_eq(end[0], "DEL");
    ck_assert_string_eq(end[1], "site:o:alice");
    // A finished transaction ends only its own place (compare, delete).
    Argv bound = bind_out_of_band("site:", "alice", "TX_1");
    ck_assert_string_eq(bound[3], "site:o:alice");
    ck_assert_string_eq(bound[4], "TX_1");
    ck_assert(bound[1].find("== '1'") != std::string::npos);
    Argv mine = end_out_of_band("site:", "alice", "TX_1");
    ck_assert_string_eq(mine[0], "EVAL");
    ck_assert(mine[1].find("== ARGV[1]") != std::string::npos);
    ck_assert_string_eq(mine[3], "site:o:alice");
    ck_assert_string_eq(mine[4], "TX_1");
}
END_TEST

START_TEST(revocations_round_trip)
{
    Revocation rev{"AbC-_09", 1700003600, 1700000000, ""};
    auto back = parse_revocation_message(revocation_message(rev));
    ck_assert(back);
    ck_assert_string_eq(back->sid, rev.sid);
    ck_assert_int_eq(back->expires, rev.expires);
    ck_assert_int_eq(back->auth_time, rev.auth_time);

    back = parse_revocation_member(revocation_member(rev), "1700003600");
    ck_assert(back && back->expires == 1700003600);

    // "Sign out everywhere": the user, not a session.
    Revocation all{"", 1700043200, 1700000000, "amy.b@example"};
    back = parse_revocation_message(revocation_message(all));
    ck_assert(back && back->sid.empty());
    ck_assert_string_eq(back->user, "amy.b@example");
    ck_assert_int_eq(back->auth_time, 1700000000);
    ck_assert_int_eq(back->expires, 1700043200);

    Argv a = revoke("p:", rev, 1700000100);
    ck_assert_string_eq(a[3], "p:revoked");
    ck_assert_string_eq(a[7], "p:revocations");
}
END_TEST

START_TEST(revocations_from_the_network_are_checked)
{
    const char *bad[] = {
        "", "sid", "sid 1", "s!d 1 2", "sid -1 2", "sid 1 2x", "sid 1 1e9",
        " 1 2", "sid  1 2", "sid 1 99999999999999999999",
    };
    for (const char *msg : bad) {
        ck_assert_msg(!parse_revocation_message(msg), "accepted '%s'", msg);
    }
    ck_assert(!parse_revocation_member("sid 1", "1.5"));
    ck_assert(!parse_revocation_member("sid|x 1", "2"));
    ck_assert(!parse_revocation_member("U: 1", "2"));
    ck_assert(!parse_revocation_member("U:a b 1", "2"));
    ck_assert(!parse_revocation_member("U:a/b 1", "2"));
}
END_TEST

int main()
{
    Suite *suite = suite_create("shared_redis");
    TCase *tc = tcase_create("shared_redis");
    tcase_add_test(tc, targets);
    tcase_add_test(tc, bad_targets);
    tcase_add_test(tc, password_files);
    tcase_add_test(tc, counter_keys);
    tcase_add_test(tc, pause_keys);
    tcase_add_test(tc, approval_and_limit_keys);
    tcase_add_test(tc, revocations_round_trip);
    tcase_add_test(tc, revocations_from_the_network_are_checked);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
