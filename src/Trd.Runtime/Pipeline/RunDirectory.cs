using Trd.Runtime.Checkpoints;
using Trd.Runtime.Logging;

namespace Trd.Runtime.Pipeline;

/// <summary>
/// A run directory held for one command: locked (<see cref="RunLock"/>: one writer at a time), holding one config
/// (<c>config.json</c>, recorded on first use; another config is refused, naming both), described by
/// <c>manifest.json</c> (written on first use) and with every command that opened it appended to
/// <c>logs/commands.log</c>. <see cref="TrdPipeline"/> opens one; the CLI, the study and the sample all go through it.
/// Nothing is written before the config has validated and the lock is held.
/// </summary>
public sealed class RunDirectory : IDisposable
{
    /// <summary>The recorded config's file name.</summary>
    public const string ConfigFile = "config.json";

    readonly RunLock _lock;

    RunDirectory(string path, PipelineConfig config, RunLock held)
    {
        Path = path;
        Config = config;
        _lock = held;
    }

    /// <summary>The directory (absolute).</summary>
    public string Path { get; }
    /// <summary>The run's config (validated).</summary>
    public PipelineConfig Config { get; }

    /// <summary>
    /// Opens <paramref name="directory"/> (created if missing) for <paramref name="config"/>: validates the config, takes
    /// the lock, refuses a directory that holds a run of another config (or, with <paramref name="mustBeFresh"/>, any
    /// run), then records config.json and manifest.json if missing and appends <paramref name="command"/> to
    /// logs/commands.log. <paramref name="configSource"/> names the config in errors. Throws
    /// <see cref="ConfigException"/> or <see cref="RunLockedException"/>. What <paramref name="stages"/> will read is checked
    /// first (<see cref="Preflight"/>).
    /// </summary>
    public static RunDirectory Open(string directory, PipelineConfig config, string command, bool mustBeFresh = false,
        string? configSource = null, Action<string>? log = null, Stages stages = Stages.All)
    {
        ArgumentNullException.ThrowIfNull(config);
        var path = System.IO.Path.GetFullPath(directory);
        config = config.Validated(configSource ?? "config");
        Preflight.Check(config, stages);             // every file the command will read, before anything is written
        var held = RunLock.Acquire(path, command, log);
        try
        {
            var recorded = System.IO.Path.Combine(path, ConfigFile);
            if (File.Exists(recorded))
            {
                if (mustBeFresh)
                    throw new ConfigException($"{path} already holds a run; pass --resume to continue it, choose another --out, or delete {path} to start over");
                var existing = PipelineConfig.Parse(File.ReadAllText(recorded), recorded);
                if (existing.ToJson() != config.ToJson())
                    throw new ConfigException($"{recorded}: the run was started with another config than {configSource ?? "this one"}; use another --out, omit --config to continue with the recorded one, or delete {path} to start over with this config");
            }
            else AtomicFile.WriteText(recorded, config.ToJson());
            Record(path, command, config);
            return new RunDirectory(path, config, held);
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    /// <summary>Opens a directory that already holds a run, with the config it recorded.</summary>
    public static RunDirectory Resume(string directory, string command, Action<string>? log = null, Stages stages = Stages.All)
    {
        var path = System.IO.Path.GetFullPath(directory);
        var recorded = System.IO.Path.Combine(path, ConfigFile);
        if (!File.Exists(recorded)) throw new ConfigException($"{path} holds no run (no {ConfigFile}); pass --config");
        var config = PipelineConfig.Parse(File.ReadAllText(recorded), recorded);
        return Open(path, config, command, configSource: recorded, log: log, stages: stages);
    }

    static void Record(string path, string command, PipelineConfig config)
    {
        var manifest = System.IO.Path.Combine(path, RunManifest.FileName);
        if (!File.Exists(manifest)) (RunManifest.Capture(command, System.Text.Json.JsonDocument.Parse(config.ToJson()).RootElement.Clone(), config.Seed) with { ResolvedRecipe = config.Recipe.ToString() }).Write(path);
        var logs = System.IO.Directory.CreateDirectory(System.IO.Path.Combine(path, "logs")).FullName;
        File.AppendAllText(System.IO.Path.Combine(logs, "commands.log"), $"{DateTime.UtcNow:O}\t{command}\t{Environment.CommandLine}\n");
    }

    /// <summary>logs/trd.log, appended to.</summary>
    public StreamWriter OpenLog() =>
        new(System.IO.Path.Combine(System.IO.Directory.CreateDirectory(System.IO.Path.Combine(Path, "logs")).FullName, "trd.log"), append: true) { AutoFlush = true };

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _lock.Dispose();
}
