// Runs on disk, end to end through the CLI: a kill -9 and --resume give byte-identical
// outputs, a second writer is refused, shards merge bit for bit into what one machine
// writes (a batch run's too), a full disk fails cleanly and --resume finishes, and every bad
// shard or merge is named (exit 2). Batch runs and their index: test_batch.cpp.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "test_cli_util.hpp"

namespace {

using namespace diffode::test::cli;

const std::vector<std::string> kOutputs = {"grid.png", "manifest.json", "samples.npy"};

// fmnist_flow, guided: 24 batches, each slow enough (a few tenths of a second) to act mid-run.
std::string slow_sample(const fs::path& out) {
  return "sample -c " + q(repo() / "configs" / "fmnist_flow.json") +
         " --set sampling.num_samples=96 --set sampling.batch_size=4 --set solver.nfe=8 --set model.threads=1 -o " +
         q(out);
}

// fmnist_exact: quick.
std::string quick_sample(const fs::path& out, const std::string& extra = "") {
  return "sample -c " + q(repo() / "configs" / "fmnist_exact.json") +
         " --set sampling.num_samples=40 --set sampling.batch_size=8 --set solver.nfe=5 " + extra + " -o " + q(out);
}

int batch_files(const fs::path& run_dir) {
  int n = 0;
  std::error_code ec;
  if (!fs::exists(run_dir / "parts", ec)) return 0;
  for (const auto& e : fs::directory_iterator(run_dir / "parts", ec))
    if (e.path().filename().string().rfind("batch-", 0) == 0 && e.path().extension() == ".npy") ++n;  // not temporaries
  return n;
}

// Starts the CLI in the background (output to `log`); returns its pid.
pid_t start_cli(const std::string& args, const fs::path& log) {
  const CliResult r = run_shell("'" + std::string(DIFFODE_CLI) + "' " + args + " > " + q(log) + " 2>&1 & echo $!", repo());
  return static_cast<pid_t>(std::stol(r.output));
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// Waits (up to a minute) until `done` holds; false on timeout.
template <class F>
bool wait_for(F done) {
  for (int i = 0; i < 6000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void expect_same_outputs(const fs::path& a, const fs::path& b) {
  for (const auto& f : kOutputs) {
    ASSERT_TRUE(fs::exists(b / f)) << f;
    EXPECT_TRUE(read_file(a / f) == read_file(b / f)) << f << " differs between " << a << " and " << b;
  }
}

// ---------------------------------------------------------------- resume

TEST(Resume, KillDashNineMidRunThenResumeGivesByteIdenticalOutputs) {
  TempDir tmp;
  const CliResult whole = run_cli(slow_sample(tmp.path / "whole"));
  ASSERT_EQ(whole.code, 0) << whole.output;

  const fs::path out = tmp.path / "killed";
  const pid_t pid = start_cli(slow_sample(out), tmp.path / "log");
  ASSERT_TRUE(wait_for([&] { return batch_files(out) >= 2 || !alive(pid); }));
  ASSERT_TRUE(alive(pid)) << "the run finished before it could be killed";
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(wait_for([&] { return !alive(pid); }));
  for (const auto& f : kOutputs) EXPECT_FALSE(fs::exists(out / f)) << f;
  const int kept = batch_files(out);
  EXPECT_GE(kept, 2);
  EXPECT_LT(kept, 24);

  const CliResult resumed = run_cli(slow_sample(out) + " --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_TRUE(Contains(resumed.output, "resuming: " + std::to_string(kept) + " of 24 batches already complete"));
  expect_same_outputs(tmp.path / "whole", out);
  // Nothing else is left: no parts, no lock, no temporaries.
  EXPECT_EQ(files_under(out), (std::vector<std::string>{"grid.png", "manifest.json", "samples.npy", "timings.json"}));
}

TEST(Resume, ResumeRefusesTheRunOfAnotherConfig) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(run_cli(quick_sample(out)).code, 0);
  const auto before = snapshot(out);
  const CliResult r = run_cli(quick_sample(out, "--set sampling.seed=7") + " --resume");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--resume: " + out.string() + " holds a finished run of another config"));
  EXPECT_TRUE(Contains(r.output, "/config/sampling/seed is 0 in one and 7 in the other"));
  expect_clean_error(r);
  EXPECT_EQ(snapshot(out), before);
}

TEST(Resume, ARunOfAnotherConfigReplacesEveryOutputOfTheOldOne) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(run_cli(quick_sample(out, "--set output.png=true")).code, 0);
  ASSERT_TRUE(fs::exists(out / "samples" / "0.png"));
  const CliResult r = run_cli(quick_sample(out, "--set solver.name=euler --set output.npy=false"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "holds a finished run of another config"));
  EXPECT_EQ(files_under(out), (std::vector<std::string>{"grid.png", "manifest.json", "timings.json"}));
}

// A finished run is replaced only once its successor is complete: a run that fails (here
// a model that turns NaN) leaves it byte for byte.
TEST(Resume, AFailedReplacementKeepsTheFinishedRun) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(run_cli(quick_sample(out)).code, 0);
  const std::string manifest = read_file(out / "manifest.json"), npy = read_file(out / "samples.npy"),
                    grid = read_file(out / "grid.png");
  const CliResult r = run_cli(quick_sample(out, "--set model.path=" + q(data_path("nan_model.pt")) +
                                                    " --set model.sample_shape=[3,8,8] --set solver.name=euler"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "NaN")) << r.output;
  EXPECT_EQ(files_under(out), (std::vector<std::string>{"grid.png", "manifest.json", "samples.npy", "timings.json"}));
  EXPECT_EQ(read_file(out / "manifest.json"), manifest);
  EXPECT_EQ(read_file(out / "samples.npy"), npy);
  EXPECT_EQ(read_file(out / "grid.png"), grid);
}

// parts/ is diffode's only as far as its own files go: anything else there is left, and
// a run kept inside another run's parts/ survives that run's cleanup.
TEST(Resume, FilesDiffodeDidNotWriteInPartsAreKept) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  fs::create_directories(out / "parts");
  write_json(out / "parts" / "notes.json", {{"mine", true}});
  ASSERT_EQ(run_cli(quick_sample(out / "parts" / "inner")).code, 0);
  const CliResult r = run_cli(quick_sample(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(json::parse(read_file(out / "parts" / "notes.json")), json({{"mine", true}}));
  EXPECT_TRUE(fs::exists(out / "parts" / "inner" / "manifest.json"));
  EXPECT_TRUE(fs::exists(out / "parts" / "inner" / "samples.npy"));
  EXPECT_TRUE(fs::exists(out / "manifest.json"));
  EXPECT_EQ(batch_files(out), 0);
  EXPECT_FALSE(fs::exists(out / "parts" / "run.json"));
  // parts/ as a file: refused by name, the file kept.
  const fs::path other = tmp.path / "other";
  fs::create_directories(other);
  write_json(other / "parts", {{"mine", true}});
  const CliResult f = run_cli(quick_sample(other));
  EXPECT_EQ(f.code, 2) << f.output;
  EXPECT_TRUE(Contains(f.output, (other / "parts").string() + " exists and is not a folder")) << f.output;
  EXPECT_EQ(json::parse(read_file(other / "parts")), json({{"mine", true}}));
}

// Each batch file is checked against the run and its place (a digest trailer), so resume
// and a rerun never take another run's batch, one moved to another index, or one whose values
// were overwritten: they are sampled again and the outputs equal an uninterrupted run's.
TEST(Resume, ABatchFromAnotherRunPlaceOrWithOtherValuesIsSampledAgain) {
  TempDir tmp;
  const fs::path ref = tmp.path / "ref", other = tmp.path / "other", own = tmp.path / "own";
  ASSERT_EQ(run_cli(quick_sample(ref)).code, 0);
  ASSERT_EQ(run_cli(quick_sample(own) + " --shard 0/2").code, 0);  // this run's batches 0 and 1
  ASSERT_EQ(run_cli(quick_sample(other, "--set sampling.seed=9") + " --shard 0/2").code, 0);
  const fs::path own_parts = own / "shard-0-of-2" / "parts", other_parts = other / "shard-0-of-2" / "parts";
  const std::string b0 = "batch-000000000000.npy", b8 = "batch-000000000008.npy";
  auto target_with = [&](const std::string& name, const std::function<void(const fs::path&)>& fill) {
    const fs::path t = tmp.path / name;
    fs::create_directories(t / "parts");
    fill(t / "parts");
    return t;
  };
  const std::vector<fs::path> targets = {
      // another seed's batch 0 beside this run's run.json
      target_with("seed", [&](const fs::path& p) {
        fs::copy_file(own_parts / "run.json", p / "run.json");
        fs::copy_file(other_parts / b0, p / b0);
      }),
      // this run's batch 0, its values overwritten with zeros (header and trailer kept)
      target_with("zeros", [&](const fs::path& p) {
        fs::copy_file(own_parts / "run.json", p / "run.json");
        std::string bytes = read_file(own_parts / b0);
        const size_t header = bytes.find('\n') + 1, trailer = 80;
        std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end() - trailer, '\0');
        std::ofstream(p / b0, std::ios::binary) << bytes;
      }),
      // this run's batch 0 copied to batch 8's place
      target_with("moved", [&](const fs::path& p) {
        fs::copy_file(own_parts / "run.json", p / "run.json");
        fs::copy_file(own_parts / b0, p / b8);
      }),
      // another run's parts with its run.json deleted
      target_with("norecord", [&](const fs::path& p) {
        fs::copy_file(other_parts / b0, p / b0);
        fs::copy_file(other_parts / b8, p / b8);
      }),
  };
  for (const fs::path& t : targets) {
    const CliResult r = run_cli(quick_sample(t) + (t.filename() == "norecord" ? "" : " --resume"));
    ASSERT_EQ(r.code, 0) << t << "\n" << r.output;
    EXPECT_FALSE(Contains(r.output, "already complete")) << t << "\n" << r.output;
    expect_same_outputs(ref, t);
  }
  // This run's own batches are still trusted: the 2 of 5 of shard 0.
  const fs::path good = target_with("good", [&](const fs::path& p) {
    for (const auto& e : fs::directory_iterator(own_parts)) fs::copy_file(e.path(), p / e.path().filename());
  });
  const CliResult r = run_cli(quick_sample(good) + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "resuming: 2 of 5 batches already complete")) << r.output;
  expect_same_outputs(ref, good);
}

TEST(Resume, ASecondWriterIsRefusedAndTheFirstFinishesUnmixed) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  const pid_t pid = start_cli(slow_sample(out), tmp.path / "log");
  ASSERT_TRUE(wait_for([&] { return batch_files(out) >= 1 || !alive(pid); }));
  ASSERT_TRUE(alive(pid)) << "the first run finished before the second started";
  const CliResult second = run_cli(slow_sample(out));
  EXPECT_EQ(second.code, 2) << second.output;
  EXPECT_TRUE(Contains(second.output, out.string() + " is being written by another diffode process (pid " +
                                          std::to_string(pid) + ")"));
  expect_clean_error(second);
  ASSERT_TRUE(wait_for([&] { return !alive(pid); }));
  ASSERT_EQ(run_cli(slow_sample(tmp.path / "alone")).code, 0);
  expect_same_outputs(tmp.path / "alone", out);
}

// ---------------------------------------------------------------- a full disk

// Runs a sample that cannot write samples.npy (`limit` breaks it), checks nothing final
// is left half-written, then --resume without the limit must give the whole run's bytes.
void expect_clean_failure_then_resume(const TempDir& tmp, const fs::path& out, const std::string& limited_run,
                                      const std::string& message) {
  const CliResult failed = run_shell(limited_run, repo());
  EXPECT_NE(failed.code, 0) << failed.output;
  EXPECT_TRUE(Contains(failed.output, "cannot write " + (out / "samples.npy").string() + ": " + message));
  EXPECT_TRUE(Contains(failed.output, "run the same command with --resume"));
  for (const auto& f : files_under(out)) {
    EXPECT_TRUE(f.rfind("parts/", 0) == 0) << "left behind: " << f;
    EXPECT_EQ(f.find(".tmp-"), std::string::npos) << f;
  }
  EXPECT_EQ(batch_files(out), 5);
}

// A 120 KiB limit per file: each batch (25 KiB) fits, samples.npy (125 KiB) does not. With
// SIGXFSZ ignored by the shell, and with its default action (diffode ignores it itself, so
// the write fails with a message where it was killed silently, leaving temporaries).
TEST(DiskFull, AFileSizeLimitFailsCleanlyAndResumeFinishes) {
  TempDir tmp;
  ASSERT_EQ(run_cli(quick_sample(tmp.path / "whole")).code, 0);
  for (const std::string trap : {"trap '' XFSZ", "trap - XFSZ"}) {
    const fs::path out = tmp.path / (trap == "trap - XFSZ" ? "default" : "ignored");
    expect_clean_failure_then_resume(
        tmp, out, trap + "; ulimit -f 120; '" + std::string(DIFFODE_CLI) + "' " + quick_sample(out) + " 2>&1",
        "File too large");
    const CliResult resumed = run_cli(quick_sample(out) + " --resume");
    ASSERT_EQ(resumed.code, 0) << trap << "\n" << resumed.output;
    expect_same_outputs(tmp.path / "whole", out);
  }
}

TEST(DiskFull, AFullTmpfsFailsCleanlyAndResumeFinishesOnceThereIsSpace) {
  TempDir tmp;
  const fs::path mnt = tmp.path / "mnt";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=200k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); the file-size-limit test covers this";
  const fs::path out = mnt / "out";
  expect_clean_failure_then_resume(tmp, out, "'" + std::string(DIFFODE_CLI) + "' " + quick_sample(out) + " 2>&1",
                                   "No space left on device");
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=2m"), 0);
  const CliResult resumed = run_cli(quick_sample(out) + " --resume");
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  ASSERT_EQ(run_cli(quick_sample(tmp.path / "whole")).code, 0);
  expect_same_outputs(tmp.path / "whole", out);
  ::umount(mnt.c_str());
}

// ---------------------------------------------------------------- shards and merge

TEST(Shards, MergedShardsAreBitIdenticalToOneMachine) {
  TempDir tmp;
  ASSERT_EQ(run_cli(quick_sample(tmp.path / "one")).code, 0);
  const fs::path sharded = tmp.path / "sharded";
  // Shard 0 by hand, 1 as a Slurm array task (ids 1..3), 2 as a Kubernetes indexed job.
  const CliResult s0 = run_cli(quick_sample(sharded) + " --shard 0/3");
  ASSERT_EQ(s0.code, 0) << s0.output;
  EXPECT_TRUE(Contains(s0.output, (sharded / "shard-0-of-3").string()));
  const CliResult early = run_cli("merge " + q(sharded));
  EXPECT_EQ(early.code, 2) << early.output;
  EXPECT_TRUE(Contains(early.output, "merge: shards missing: 1, 2 of 3"));
  const CliResult s1 = run_shell("SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=3 '" +
                                     std::string(DIFFODE_CLI) + "' " + quick_sample(sharded) + " --shard auto",
                                 repo());
  ASSERT_EQ(s1.code, 0) << s1.output;
  const CliResult s2 = run_shell("JOB_COMPLETION_INDEX=2 '" + std::string(DIFFODE_CLI) + "' " +
                                     quick_sample(sharded) + " --shard auto/3",
                                 repo());
  ASSERT_EQ(s2.code, 0) << s2.output;
  EXPECT_TRUE(fs::exists(sharded / "shard-1-of-3" / "shard.json"));
  EXPECT_TRUE(fs::exists(sharded / "shard-2-of-3" / "shard.json"));
  const CliResult merged = run_cli("merge " + q(sharded));
  ASSERT_EQ(merged.code, 0) << merged.output;
  expect_same_outputs(tmp.path / "one", sharded);

  // The shards given one by one, into another folder: the same bytes.
  const CliResult again = run_cli("merge " + q(sharded / "shard-2-of-3") + " " + q(sharded / "shard-0-of-3") + " " +
                                  q(sharded / "shard-1-of-3") + " -o " + q(tmp.path / "merged2"));
  ASSERT_EQ(again.code, 0) << again.output;
  expect_same_outputs(tmp.path / "one", tmp.path / "merged2");
}

TEST(Shards, TheSlurmArrayScriptShardsOnMachinesOfAnySizeAndMergeFinishes) {
  // The shipped script as two array tasks, with 1 and 2 CPUs: the thread count is no part
  // of a run, so the shards merge into what one machine writes.
  TempDir tmp;
  const json cfg = {{"model", {{"path", model_path("fmnist_exact.pt").string()}}},
                    {"solver", {{"name", "dpmpp2m"}, {"nfe", 5}}},
                    {"sampling", {{"num_samples", 40}, {"batch_size", 8}}}};
  const fs::path config = write_json(tmp.path / "c.json", cfg);
  for (int task = 0; task < 2; ++task) {
    const CliResult r = run_shell("SLURM_ARRAY_TASK_ID=" + std::to_string(task) +
                                      " SLURM_ARRAY_TASK_COUNT=2 SLURM_CPUS_PER_TASK=" + std::to_string(task + 1) +
                                      " DIFFODE='" + std::string(DIFFODE_CLI) + "' bash scripts/cluster/slurm_sample.sh " +
                                      q(config) + " " + q(tmp.path / "runs"),
                                  repo());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const CliResult merged = run_cli("merge " + q(tmp.path / "runs"));
  ASSERT_EQ(merged.code, 0) << merged.output;
  ASSERT_EQ(run_cli("sample -c " + q(config) + " -o " + q(tmp.path / "one")).code, 0);
  expect_same_outputs(tmp.path / "one", tmp.path / "runs");
}

TEST(Shards, ShardsOfDifferentConfigsOrIncompleteOnesAreRefused) {
  TempDir tmp;
  const fs::path a = tmp.path / "a", b = tmp.path / "b";
  for (int i = 0; i < 2; ++i) ASSERT_EQ(run_cli(quick_sample(a) + " --shard " + std::to_string(i) + "/2").code, 0);
  ASSERT_EQ(run_cli(quick_sample(b, "--set sampling.seed=3") + " --shard 1/2").code, 0);
  const CliResult mixed =
      run_cli("merge " + q(a / "shard-0-of-2") + " " + q(b / "shard-1-of-2") + " -o " + q(tmp.path / "m"));
  EXPECT_EQ(mixed.code, 2) << mixed.output;
  EXPECT_TRUE(Contains(mixed.output, "come from different runs: /config/sampling/seed"));
  expect_clean_error(mixed);
  EXPECT_FALSE(fs::exists(tmp.path / "m"));

  fs::remove(a / "shard-1-of-2" / "shard.json");  // as if killed before it finished
  const CliResult incomplete = run_cli("merge " + q(a));
  EXPECT_EQ(incomplete.code, 2) << incomplete.output;
  EXPECT_TRUE(Contains(incomplete.output, (a / "shard-1-of-2").string() + " is incomplete"));
  EXPECT_FALSE(fs::exists(a / "manifest.json"));

  const CliResult twice = run_cli("merge " + q(a / "shard-0-of-2") + " " + q(a / "shard-0-of-2") + " -o " + q(tmp.path / "m"));
  EXPECT_EQ(twice.code, 2) << twice.output;
  EXPECT_TRUE(Contains(twice.output, "shard-0-of-2 is given twice"));
}

TEST(Shards, AShardWhoseBatchesAreFromAnotherConfigOrAMalformedRecordIsRefused) {
  TempDir tmp;
  const fs::path a = tmp.path / "a", b = tmp.path / "b";
  for (int i = 0; i < 2; ++i) ASSERT_EQ(run_cli(quick_sample(a) + " --shard " + std::to_string(i) + "/2").code, 0);
  ASSERT_EQ(run_cli(quick_sample(b, "--set sampling.seed=9") + " --shard 0/2").code, 0);
  // As if shard 0 had been re-run with another config and stopped: its batches are b's.
  fs::copy_file(b / "shard-0-of-2" / "parts" / "run.json", a / "shard-0-of-2" / "parts" / "run.json",
                fs::copy_options::overwrite_existing);
  const CliResult r = run_cli("merge " + q(a));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "its batch files belong to another run than its shard.json"));
  EXPECT_FALSE(fs::exists(a / "manifest.json"));

  write_json(a / "shard-1-of-2" / "shard.json", {{"shard", {{"index", 1}, {"count", 2}}}});
  const CliResult malformed = run_cli("merge " + q(a / "shard-1-of-2") + " -o " + q(tmp.path / "m"));
  EXPECT_EQ(malformed.code, 2) << malformed.output;
  EXPECT_TRUE(Contains(malformed.output, "shard.json: not a shard record written by diffode"));
  expect_clean_error(malformed);
}

TEST(Shards, ABatchRunIsShardedRunByRunAndMergedFromItsFolder) {
  TempDir tmp;
  json j = {{"model", {{"path", model_path("fmnist_exact.pt").string()}}},
            {"solver", {{"name", "euler"}, {"nfe", 4}}},
            {"sampling", {{"num_samples", 24}, {"batch_size", 8}}},
            {"sweep", {{"solver.name", {"euler", "dpmpp2m"}}}}};
  const fs::path cfg = write_json(tmp.path / "sweep.json", j);
  ASSERT_EQ(run_cli("sample -c " + q(cfg) + " -o " + q(tmp.path / "one")).code, 0);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(run_cli("sample -c " + q(cfg) + " --shard " + std::to_string(i) + "/2 -o " + q(tmp.path / "sh")).code, 0);
  const CliResult merged = run_cli("merge " + q(tmp.path / "sh"));
  ASSERT_EQ(merged.code, 0) << merged.output;
  for (const char* run : {"name-euler", "name-dpmpp2m"}) expect_same_outputs(tmp.path / "one" / run, tmp.path / "sh" / run);
}

TEST(Shards, BadShardSpecsAreNamed) {
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--shard 3/3", "shard index 3 is outside [0, 2]"},
      {"--shard 1", "expected I/N (e.g. 0/4), auto or auto/N"},
      {"--shard a/2", "'a' is not an integer"},
      {"--shard 0/0", "the number of shards must be in [1, 1048576], got 0"},
      {"--shard 1/4294967296", "'4294967296' is not an integer in [0, 1048576]"},  // was cut to 0: SIGFPE
      {"--shard 0/4294967297", "'4294967297' is not an integer in [0, 1048576]"},  // was cut to 1: unsharded
      {"--shard 0/9223372036854775807", "is not an integer in [0, 1048576]"},
      {"--shard 0/99999999999999999999999", "is not an integer in [0, 1048576]"},
      {"--shard -1/4", "shard index -1 is outside [0, 3]"},
      {"--shard auto", "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set"},
      {"--shard auto/4", "neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set"},
  };
  for (const auto& [flag, message] : cases) {
    const CliResult r = run_shell("env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u JOB_COMPLETION_INDEX '" +
                                      std::string(DIFFODE_CLI) + "' " + quick_sample(tmp.path / "out") + " " + flag,
                                  repo());
    EXPECT_EQ(r.code, 2) << flag << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, message)) << flag;
    expect_clean_error(r);
  }
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
  const CliResult none = run_cli("merge " + q(tmp.path));
  EXPECT_EQ(none.code, 2) << none.output;
  EXPECT_TRUE(Contains(none.output, "holds no shards"));
}

}  // namespace

// A kill -9 while the outputs are assembled leaves "<output>.tmp-<pid>-<n>" files; the next
// run into the folder removes them (and only them: a look-alike of another name stays).
TEST(Resume, TemporariesOfAKilledAssemblyDoNotOutliveTheRerun) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  fs::create_directories(out / "samples");
  for (const char* f : {"samples.npy.tmp-4242-17", "manifest.json.tmp-1-2", "samples/3.png.tmp-99-1"})
    write_json(out / f, {{"partial", true}});
  for (const char* f : {"mine.npy.tmp-1-2", "samples.npy.tmp-x-2", "notes.txt"}) write_json(out / f, {{"mine", true}});
  const CliResult r = run_cli(quick_sample(out, "--set output.png=true"));
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"samples.npy.tmp-4242-17", "manifest.json.tmp-1-2", "samples/3.png.tmp-99-1"})
    EXPECT_FALSE(fs::exists(out / f)) << f;
  for (const char* f : {"mine.npy.tmp-1-2", "samples.npy.tmp-x-2", "notes.txt"}) EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_TRUE(fs::exists(out / "samples" / "3.png"));
}

// ---------------------------------------------------------------- whose folder (issue 25)

namespace {

std::string gauss_sample(const fs::path& out, const std::string& extra = "") {
  return "sample -c " + q(repo() / "configs" / "gauss.json") + " " + extra + " -o " + q(out);
}

void write_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

}  // namespace

// A manifest is read back as input: one whose "files" name a path outside the folder (or any
// name diffode does not write) is refused by name, and nothing it names is removed.
TEST(OwnFolder, AManifestNamingFilesOutsideTheFolderDeletesNothing) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(run_cli(gauss_sample(out)).code, 0);
  write_text(tmp.path / "precious.txt", "mine");
  write_text(tmp.path / "abs.txt", "mine too");
  json m = json::parse(read_file(out / "manifest.json"));
  m["files"].push_back("../precious.txt");
  m["files"].push_back((tmp.path / "abs.txt").string());
  write_json(out / "manifest.json", m);
  const CliResult r = run_cli(gauss_sample(out, "--set sampling.seed=7"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, (out / "manifest.json").string() + ": /files/"));
  EXPECT_TRUE(Contains(r.output, "../precious.txt"));
  expect_clean_error(r);
  EXPECT_EQ(read_file(tmp.path / "precious.txt"), "mine");
  EXPECT_EQ(read_file(tmp.path / "abs.txt"), "mine too");
  EXPECT_TRUE(fs::exists(out / "samples.npy"));
}

// A user's own file under one of diffode's names is never written over: exit 2 naming it,
// the file as it was; other files beside a run are left alone.
TEST(OwnFolder, AUsersFilesUnderDiffodesNamesAreNotWrittenOver) {
  TempDir tmp;
  for (const char* name : {"samples.npy", "grid.png", "manifest.json", "timings.json", "samples/0.png", "shard.json"}) {
    const fs::path out = tmp.path / (std::string("out-") + fs::path(name).filename().string());
    write_text(out / name, "mine");
    const CliResult r = run_cli(gauss_sample(out));
    EXPECT_EQ(r.code, 2) << name << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, out.string())) << name;
    expect_clean_error(r);
    EXPECT_EQ(read_file(out / name), "mine") << name;
    EXPECT_EQ(files_under(out), std::vector<std::string>{fs::path(name).string()}) << name;
  }
  // merge -o DEST: the same.
  const fs::path sharded = tmp.path / "sharded";
  ASSERT_EQ(run_cli(gauss_sample(sharded, "--shard 0/2")).code, 0);
  ASSERT_EQ(run_cli(gauss_sample(sharded, "--shard 1/2")).code, 0);
  const fs::path dest = tmp.path / "dest";
  write_text(dest / "samples.npy", "mine");
  const CliResult m = run_cli("merge " + q(sharded) + " -o " + q(dest));
  EXPECT_EQ(m.code, 2) << m.output;
  EXPECT_TRUE(Contains(m.output, "samples.npy was not written by diffode"));
  EXPECT_EQ(read_file(dest / "samples.npy"), "mine");
  // Beside a finished run of diffode's own, a file of another name stays and the run is replaced.
  const fs::path run = tmp.path / "run";
  ASSERT_EQ(run_cli(gauss_sample(run)).code, 0);
  write_text(run / "notes.txt", "mine");
  const CliResult again = run_cli(gauss_sample(run, "--set sampling.seed=3"));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(read_file(run / "notes.txt"), "mine");
  EXPECT_EQ(json::parse(read_file(run / "manifest.json"))["seeds"]["first"], 3);
}

// DIR/.lock that diffode did not write (holding text, or a link to another file) is refused
// before it is written to, and left.
TEST(OwnFolder, AUsersLockFileOrALinkedOneIsLeftAlone) {
  TempDir tmp;
  const fs::path out = tmp.path / "out";
  write_text(out / ".lock", "my notes\n");
  const CliResult r = run_cli(gauss_sample(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, (out / ".lock").string() + " is not diffode's lock file"));
  EXPECT_EQ(read_file(out / ".lock"), "my notes\n");

  const fs::path linked = tmp.path / "linked";
  write_text(tmp.path / "target.txt", "precious");
  fs::create_directories(linked);
  fs::create_symlink(tmp.path / "target.txt", linked / ".lock");
  const CliResult l = run_cli(gauss_sample(linked));
  EXPECT_EQ(l.code, 2) << l.output;
  EXPECT_TRUE(Contains(l.output, "symbolic link"));
  EXPECT_EQ(read_file(tmp.path / "target.txt"), "precious");
  EXPECT_TRUE(fs::is_symlink(linked / ".lock"));
  // A stale lock of a killed diffode (a pid) is taken over as before.
  const fs::path stale = tmp.path / "stale";
  write_text(stale / ".lock", "999999");
  EXPECT_EQ(run_cli(gauss_sample(stale)).code, 0);
  EXPECT_FALSE(fs::exists(stale / ".lock"));
}

// parts/ (and samples/) that is a link to another folder is refused: that folder's files stay.
TEST(OwnFolder, PartsOrSamplesAsASymlinkIsRefused) {
  TempDir tmp;
  const fs::path elsewhere = tmp.path / "elsewhere";
  write_text(elsewhere / "run.json", "mine");
  write_text(elsewhere / "batch-000000000000.npy", "mine");
  write_text(elsewhere / "0.png", "mine");
  for (const char* folder : {"parts", "samples"}) {
    const fs::path out = tmp.path / folder;
    fs::create_directories(out);
    fs::create_directory_symlink(elsewhere, out / folder);
    const CliResult r = run_cli(gauss_sample(out));
    EXPECT_EQ(r.code, 2) << folder << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, (out / folder).string() + " exists and is not a folder (or is a symbolic link)"));
    expect_clean_error(r);
  }
  EXPECT_EQ(files_under(elsewhere), (std::vector<std::string>{"0.png", "batch-000000000000.npy", "run.json"}));
  for (const auto& f : files_under(elsewhere)) EXPECT_EQ(read_file(elsewhere / f), "mine") << f;
}

// A config whose name leaves no folder name ("...json": stem "..") never makes a run write
// outside -o or into the working directory.
TEST(OwnFolder, AConfigNamedDotDotJsonNamesNoRunFolder) {
  TempDir tmp;
  const fs::path cfgs = tmp.path / "work" / "cfgs";
  fs::create_directories(cfgs);
  fs::copy_file(repo() / "configs" / "gauss.json", cfgs / "...json");
  fs::copy_file(repo() / "configs" / "gauss.json", cfgs / "b.json");
  for (auto* name : {"...json", "b.json"}) {
    json j = json::parse(read_file(cfgs / name));
    j["model"]["path"] = (repo() / "models" / "gauss.pt").string();
    write_json(cfgs / name, j);
  }
  const auto before = files_under(tmp.path);
  const CliResult batch = run_cli("sample -c " + q(cfgs / "...json") + " -c " + q(cfgs / "b.json") + " -o " +
                                  q(tmp.path / "work" / "root"), tmp.path / "work");
  EXPECT_EQ(batch.code, 2) << batch.output;
  EXPECT_TRUE(Contains(batch.output, "its run folder would be named '..'"));
  expect_clean_error(batch);
  const CliResult plain = run_cli("sample -c " + q(cfgs / "...json"), tmp.path / "work");
  EXPECT_EQ(plain.code, 2) << plain.output;
  EXPECT_TRUE(Contains(plain.output, "its run folder would be named '..'"));
  EXPECT_EQ(files_under(tmp.path), before);
}

// A batch run's root: a user's index.csv (with no index.json of diffode's) is not written over.
TEST(OwnFolder, ABatchRunLeavesAUsersIndexCsv) {
  TempDir tmp;
  const fs::path root = tmp.path / "root";
  write_text(root / "index.csv", "mine\n");
  const std::string cfg = q(repo() / "configs" / "gauss.json");
  const CliResult r = run_cli("sample -c " + cfg + " -c " + q(repo() / "configs" / "gmm2d.json") + " -o " + q(root));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "index.csv was not written by diffode"));
  EXPECT_EQ(read_file(root / "index.csv"), "mine\n");
  EXPECT_EQ(files_under(root), std::vector<std::string>{"index.csv"});
}

// A shard count in a shard.json is bounded as --shard is, and read as written: 2147483647 had
// merge look for that many folders for minutes, 2^40 read as "shard 0 of 0".
TEST(Shards, AShardRecordsCountIsReadAsWrittenAndBounded) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "c.json", {{"model", {{"path", model_path("gauss.pt").string()}}},
                                                        {"sampling", {{"num_samples", 8}, {"batch_size", 4}}}});
  ASSERT_EQ(run_cli("sample -c " + q(cfg) + " --shard 0/2 -o " + q(tmp.path / "r")).code, 0);
  const fs::path record = tmp.path / "r" / "shard-0-of-2" / "shard.json";
  json s = json::parse(read_file(record));
  for (const int64_t count : {int64_t{2147483647}, int64_t{1} << 40}) {
    s["shard"]["count"] = count;
    write_json(record, s);
    const CliResult r = run_shell("timeout 60 '" + std::string(DIFFODE_CLI) + "' merge " + q(tmp.path / "r"), tmp.path);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_TRUE(Contains(r.output, "shard 0 of " + std::to_string(count) + " is out of range (1 to 1048576 shards)"))
        << r.output;
  }
}

// Merging into one of its own shard folders is named as such: the lock's pid was this
// command's own, and it blamed "another diffode process".
TEST(Shards, MergingIntoOneOfItsShardsIsNamed) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "c.json", {{"model", {{"path", model_path("gauss.pt").string()}}},
                                                        {"sampling", {{"num_samples", 8}, {"batch_size", 4}}}});
  for (const char* shard : {"0/2", "1/2"})
    ASSERT_EQ(run_cli("sample -c " + q(cfg) + " --shard " + shard + " -o " + q(tmp.path / "r")).code, 0);
  const CliResult r = run_cli("merge " + q(tmp.path / "r") + " -o " + q(tmp.path / "r" / "shard-0-of-2"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "is already in use by this command")) << r.output;
  EXPECT_FALSE(Contains(r.output, "another diffode process")) << r.output;
}
