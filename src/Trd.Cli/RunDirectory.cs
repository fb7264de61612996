using Trd.Runtime.Logging;
using Trd.Runtime.Pipeline;

namespace Trd.Cli;

/// <summary>The run directory's own files: config.json (the resolved config), manifest.json and logs/.</summary>
static class RunDirectory
{
    /// <summary>
    /// The run's config: from --config (recorded as config.json on first use; a different config for an existing run
    /// is an error) or, without --config, the run's recorded config.json. Writes manifest.json on first use.
    /// </summary>
    public static PipelineConfig Prepare(string directory, string? configPath, string command, bool mustBeFresh)
    {
        var recorded = Path.Combine(directory, "config.json");
        PipelineConfig config;
        if (configPath is not null)
        {
            config = PipelineConfig.Load(configPath);
            if (File.Exists(recorded))
            {
                if (mustBeFresh)
                    throw new ConfigException($"{directory} already holds a run; pass --resume to continue it, or choose another --out");
                var existing = PipelineConfig.Parse(File.ReadAllText(recorded), recorded);
                if (existing.ToJson() != config.ToJson())
                    throw new ConfigException($"{recorded}: the run was started with another config than {configPath}; use another --out, or omit --config to use the recorded one");
            }
        }
        else
        {
            if (!File.Exists(recorded)) throw new ConfigException($"{directory} holds no run (no config.json); pass --config");
            config = PipelineConfig.Parse(File.ReadAllText(recorded), recorded).Validated(recorded);
        }
        Directory.CreateDirectory(directory);
        if (!File.Exists(recorded)) File.WriteAllText(recorded, config.ToJson());
        var manifest = Path.Combine(directory, "manifest.json");
        if (!File.Exists(manifest)) RunManifest.Capture(command, config.ToJson(), config.Seed).Write(directory);
        File.AppendAllText(Path.Combine(Directory.CreateDirectory(Path.Combine(directory, "logs")).FullName, "commands.log"),
            $"{DateTime.UtcNow:O}\t{command}\t{Environment.CommandLine}\n");
        return config;
    }

    /// <summary>logs/trd.log, appended to.</summary>
    public static StreamWriter OpenLog(string directory) =>
        new(Path.Combine(Directory.CreateDirectory(Path.Combine(directory, "logs")).FullName, "trd.log"), append: true) { AutoFlush = true };
}
