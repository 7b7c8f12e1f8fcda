// API keys: file parsing errors name the line, scopes are enforced, and
// error messages never contain the key.
#include "server/auth.h"

#include "gtest/gtest.h"
#include "server/state/errors.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;

TEST(AuthTest, ScopesAndErrors) {
  auto keys = ApiKeys::Parse("# comment\nadmin adminkey123 ops\nclassify clientkey123\n", "k");
  ASSERT_OK(keys);
  EXPECT_EQ((*keys)->size(), 2u);
  auto admin = (*keys)->Authenticate("Bearer adminkey123", Scope::kAdmin);
  ASSERT_OK(admin);
  EXPECT_EQ(admin->name, "ops");
  ASSERT_OK((*keys)->Authenticate("bearer clientkey123", Scope::kClassify));
  auto denied = (*keys)->Authenticate("Bearer clientkey123", Scope::kAdmin);
  EXPECT_THAT(denied, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(ReasonOf(denied.status()), "INSUFFICIENT_SCOPE");
  auto missing = (*keys)->Authenticate("", Scope::kClassify);
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(ReasonOf(missing.status()), "MISSING_CREDENTIALS");
  auto wrong = (*keys)->Authenticate("Bearer adminkey124", Scope::kClassify);
  EXPECT_THAT(wrong, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(ReasonOf(wrong.status()), "INVALID_API_KEY");
  EXPECT_EQ(std::string(wrong.status().message()).find("adminkey124"), std::string::npos);
  EXPECT_THAT((*keys)->Authenticate("Basic abc", Scope::kClassify),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(AuthTest, BadFilesAreRejectedWithoutEchoingKeys) {
  auto bad_scope = ApiKeys::Parse("root topsecret99\n", "keys.txt");
  EXPECT_THAT(bad_scope, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(std::string(bad_scope.status().message()).find("line 1"), std::string::npos);
  EXPECT_EQ(std::string(bad_scope.status().message()).find("topsecret99"), std::string::npos);
  EXPECT_THAT(ApiKeys::Parse("admin short\n", "k"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ApiKeys::Parse("# nothing\n", "k"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ApiKeys::Load("/nonexistent/keys"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AuthTest, DisabledAdmitsEveryone) {
  auto keys = ApiKeys::Disabled();
  auto p = keys->Authenticate("", Scope::kAdmin);
  ASSERT_OK(p);
  EXPECT_EQ(p->scope, Scope::kAdmin);
}

}  // namespace
}  // namespace provp::server
