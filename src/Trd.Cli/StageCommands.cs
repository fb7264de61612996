using System.CommandLine;
using Trd.Runtime.Logging;
using Trd.Runtime.Pipeline;

namespace Trd.Cli;

/// <summary>rollout, refine, train, eval, analyze and run: one pipeline stage each (run: all of them).</summary>
static class StageCommands
{
    static readonly Option<FileInfo?> ConfigOption = new("--config", "-c") { Description = "The run's JSON config (see configs/tiny.json). Optional when --out already holds a run: its config.json is used." };
    static readonly Option<DirectoryInfo> OutOption = new("--out", "-o") { Description = "The run directory (created if missing).", Required = true };
    static readonly Option<bool> ResumeOption = new("--resume") { Description = "Continue a stopped run: training restarts from its newest checkpoint (generation stages always skip finished problems)." };
    static readonly Option<string[]> SetOption = new("--set") { Description = "Override a config key: --set train.learning_rate=1e-4 (repeatable; the value is JSON, or else text)." };
    static readonly Option<bool> VerboseOption = new("--verbose", "-v") { Description = "Also print a line per training step (always in logs/trd.log)." };

    public static IEnumerable<Command> All()
    {
        yield return Stage("rollout", "Stage 1: the student samples one rollout y_o per problem.", Stages.Rollout, (p, _) => p.Rollout());
        yield return Stage("refine", "Stage 2: the teacher rewrites each y_o into y_r (OPD: separate teacher; OPSD: the student's backbone given y*).", Stages.Refine, (p, _) => p.Refine());
        yield return Stage("train", "Stage 3: distil the student along y_o or y_r with the config's recipe.", Stages.Train, (p, resume) => p.Train(resume));
        yield return Stage("eval", "Evaluate the base and trained students: Avg@K, Pass@K, pass@k curves, difficulty buckets.", Stages.Eval, (p, _) => p.Evaluate());
        yield return Stage("analyze", "Corpus analysis: lengths and accuracy of y*, y_o, y_r, their joint outcome; verl parquet export.", Stages.Analyze, (p, _) => p.Analyze());
        yield return Stage("run", "Every stage in order, from one config.", Stages.All, (p, resume) => p.RunAll(resume), isRun: true);
    }

    /// <summary>
    /// <c>trd check --config C</c>: validates the config and every file a run of it will read (problem files, model
    /// directories, tokenizers, sizes against this machine), and writes nothing.
    /// </summary>
    public static Command Check()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The run's JSON config.", Required = true };
        var command = new Command("check", "Validate a config and every file its run will read; write nothing.") { config, SetOption };
        Cli.Examples(command, "trd check --config configs/gym-opd.json", "trd check --config configs/gym-opd.json --set train.learning_rate=1e-3 --set recipe=forward-kl");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var path = parse.GetRequiredValue(config).FullName;
            var loaded = PipelineConfig.Load(path, parse.GetValue(SetOption) ?? []);
            Preflight.Check(loaded, Stages.All);
            Console.WriteLine($"{path}: valid ({loaded.Setting}, recipe {loaded.Recipe}); every file a run of it reads was read and checked (problems, models, tokenizers, sizes)");
        }));
        return command;
    }

    static Command Stage(string name, string description, Stages stages, Action<TrdPipeline, bool> action, bool isRun = false)
    {
        var command = new Command(name, description) { ConfigOption, OutOption, SetOption, VerboseOption };
        if (name is "train" or "run") command.Add(ResumeOption);
        Cli.Examples(command, $"trd {name} --config configs/gym-opd.json --out runs/gym-opd",
            $"trd {name} --out runs/gym-opd{(name is "run" or "train" ? " --resume" : "")}   # again, with the run's recorded config");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var output = parse.GetRequiredValue(OutOption).FullName;
            var resume = parse.GetValue(ResumeOption);
            var configPath = parse.GetValue(ConfigOption)?.FullName;
            var overrides = parse.GetValue(SetOption) ?? [];
            if (configPath is null && overrides.Length > 0)
                throw new ArgumentException("--set changes a config given with --config; a run's recorded config is changed by starting a new run");
            // The run directory: locked for the whole command; --config recorded on first use, or the recorded one.
            using var run = configPath is null ? RunDirectory.Resume(output, $"trd {name}", Console.Error.WriteLine, stages)
                : RunDirectory.Open(output, PipelineConfig.Load(configPath, overrides), $"trd {name}", mustBeFresh: isRun && !resume, configSource: configPath,
                    log: Console.Error.WriteLine, stages: stages);
            using var log = run.OpenLog();
            var terminal = new Terminal(parse.GetValue(VerboseOption), Terminal.StepLine);
            using var pipeline = new TrdPipeline(run, line => { terminal.Line(line); log.WriteLine($"[{DateTime.UtcNow:O}] {line}"); }, terminal.Progress());
            terminal.Line($"{name}: {run.Config.Setting}, recipe {run.Config.Recipe} → {output}");
            action(pipeline, resume);
            Console.Error.WriteLine($"{name}: done → {output}");
        }));
        return command;
    }
}
