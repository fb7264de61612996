// The objective executor's benchmark (docs/performance.md). Commands:
//   (none)   the suite: floors, then every configuration in its own child process; prints the markdown section and
//            writes it into docs/performance.md (--quick: N = 256, 1,024, one timed run each, prints only).
//            Options: --n 512,1024,4096  --dtype fp32,bf16  --path naive,chunked,fused  --max-gib 20
//                     --warmup W --timed T (fixed counts)  --out FILE (where the section goes)  --no-write
//                     --no-snapshot (run from the build output itself rather than a private copy of it)
//   one      one configuration in this process: --path naive|chunked|fused --n N --dtype fp32|bf16 [--warmup 1 --timed 2]
//            [--max-gib G: stop the process if its RSS passes G GiB]
//   decode   Qwen3 (~100M parameters) prefill/decode tokens/s with the KV cache (batch 1, 16) and with prefix
//            recomputation: [--new 512 --recompute 64 --prompt 128 --no-write]; writes its own section
//   serve    the served path against `trd serve` of the gym student: per-request overhead, requests/s at client
//            concurrencies, stored teacher-score bytes per token: [--requests 64 --concurrency 1,8,32 --no-write]
//            (build src/Trd.Cli -c Release first); writes its own section
//   floors   memory bandwidth and matmul rates: [--n 512 --bf16-n 512]
//   stress   one study stage trained again and again, counting failures: [--iterations 200 --load 0 --setting opsd
//            --method forward-kl-clip --dir runs/stress --gc-pressure --study (the whole quick study each iteration)]
using System.Diagnostics;
using System.Text.Json;
using Trd.Bench;
using Trd.Core;
using Trd.Runtime;
using Trd.Runtime.Pipeline;
using static TorchSharp.torch;

var cli = Cli.Parse(args);
switch (cli.Command)
{
    case "one":
    {
        var config = new Config(cli.Get("path", "fused"), long.Parse(cli.Get("n", "1024")), cli.Get("dtype", "fp32"));
        if (cli.Has("max-gib")) Child.StartWatchdog(double.Parse(cli.Get("max-gib", "20"), System.Globalization.CultureInfo.InvariantCulture));
        var result = Child.RunOne(config, int.Parse(cli.Get("warmup", "1")), int.Parse(cli.Get("timed", "2")));
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }
    case "floors":
    {
        var floors = Child.RunFloors(1.0, long.Parse(cli.Get("n", "512")), long.Parse(cli.Get("bf16-n", "512")));
        Console.WriteLine("FLOORS " + JsonSerializer.Serialize(floors));
        return 0;
    }
    case "decode":
    {
        set_num_threads(Environment.ProcessorCount);
        var section = Decode.Run(int.Parse(cli.Get("new", "64")), int.Parse(cli.Get("recompute", "64")), int.Parse(cli.Get("prompt", "128")), Decode.CopyBandwidth());
        Console.WriteLine(section);
        if (!cli.Has("no-write")) Report.WriteSection(Path.Combine(RepositoryRoot(), "docs", "performance.md"), section);
        return 0;
    }
    case "serve":
    {
        var section = Serve.Run(RepositoryRoot(), int.Parse(cli.Get("requests", "64")), cli.Get("concurrency", "1,8,32").Split(',').Select(int.Parse).ToArray());
        Console.WriteLine(section);
        if (!cli.Has("no-write")) Report.WriteSection(Path.Combine(RepositoryRoot(), "docs", "performance.md"), section);
        return 0;
    }
    case "stress":
        return Stress.Run(int.Parse(cli.Get("iterations", "200")), int.Parse(cli.Get("load", "0")),
            Setting.TryParse(cli.Get("setting", "opsd")) ?? throw new ArgumentException($"--setting {cli.Get("setting", "opsd")}: expected opd or opsd"),
            RecipeNames.Parse(cli.Get("method", "forward-kl-clip")), Path.GetFullPath(cli.Get("dir", Path.Combine("runs", "stress"))), cli.Has("gc-pressure"),
            cli.Has("study"));
    case "suite":
        return RunSuite(cli, args);
    default:
        Console.Error.WriteLine($"unknown command '{cli.Command}': use one, floors, decode, serve, stress, or no command for the suite");
        return 2;
}

static int RunSuite(Cli cli, string[] args)
{
    if (!Snapshot.Active && !cli.Has("no-snapshot"))
        return Snapshot.RunFromCopy(args);
    var quick = cli.Has("quick");
    long[] List(string name, string fallback) => cli.Get(name, fallback).Split(',').Select(long.Parse).ToArray();
    string[] Words(string name, string fallback) => cli.Get(name, fallback).Split(',');
    var suite = new Suite
    {
        Ns = List("n", quick ? "256,1024" : "512,1024,4096"),
        DTypes = Words("dtype", "fp32,bf16"),
        Paths = Words("path", "naive,chunked,fused"),
        MaxGiB = double.Parse(cli.Get("max-gib", "20")),
        Warmup = cli.Has("warmup") ? int.Parse(cli.Get("warmup", "1")) : quick ? 0 : null,
        Timed = cli.Has("timed") ? int.Parse(cli.Get("timed", "2")) : quick ? 1 : null,
    };

    set_num_threads(Environment.ProcessorCount);
    var machine = $"{Machine.CpuModel()}, {Environment.ProcessorCount} cores ({Machine.MatmulFlags()}), " +
                  $"{Machine.MemInfoBytes("MemTotal") / Machine.GiB:F1} GiB RAM";
    var runtime = $"{Devices.Describe(Devices.Default)}, .NET {Environment.Version}; code: {Snapshot.CodeVersion(RepositoryRoot())}";
    var command = "dotnet run -c Release --project bench/Trd.Bench" + (args.Length > 0 ? " -- " + string.Join(" ", args) : "");
    Console.Error.WriteLine($"{machine}\n{runtime}\n{command}");

    var clock = Stopwatch.StartNew();
    var started = DateTime.Now;
    suite.Run();
    var section = Report.Section(suite, machine, runtime, command, clock.Elapsed, started);
    Console.WriteLine(section);

    var write = !cli.Has("no-write") && (!quick || cli.Has("out"));
    if (write)
    {
        var path = cli.Has("out") ? cli.Get("out", "") : Path.Combine(RepositoryRoot(), "docs", "performance.md");
        Report.WriteSection(path, section);
        Console.Error.WriteLine($"wrote the section '{Report.Heading}' into {path}");
    }
    Console.Error.WriteLine($"suite wall time {clock.Elapsed.TotalMinutes:F1} min");
    return 0;
}

// The directory holding Trd.sln, looked for from the working directory up, then from the build output (of which
// the suite may run a snapshot) up.
static string RepositoryRoot()
{
    var starts = new[] { Directory.GetCurrentDirectory(), Environment.GetEnvironmentVariable("TRD_BENCH_SNAPSHOT"), AppContext.BaseDirectory };
    foreach (var start in starts.OfType<string>())
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Trd.sln")))
                return dir.FullName;
    throw new InvalidOperationException("Trd.sln not found above the working directory or the executable: pass --out FILE");
}
