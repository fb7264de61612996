using System.ComponentModel;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;
using Trd.Runtime.Checkpoints;

namespace Trd.Runtime.Logging;

/// <summary>
/// What a run needs to be reproduced or compared, written once at its start as <c>manifest.json</c> in the run
/// directory (snake_case keys, e.g. <c>started_at</c>, <c>git_commit</c>). The configuration is kept whole, as JSON.
/// </summary>
/// <param name="StartedAt">When the run started, UTC.</param>
/// <param name="Command">The command line that started it.</param>
/// <param name="Config">The run's configuration, whole.</param>
/// <param name="Seed">The run's random seed.</param>
/// <param name="Versions">Component versions: <c>Trd.Core</c>, <c>Trd.Runtime</c> (assembly informational versions,
/// which carry the build's commit), <c>TorchSharp</c>, and <c>libtorch</c> when a device was given.</param>
/// <param name="Runtime">The .NET runtime (<see cref="RuntimeInformation.FrameworkDescription"/>).</param>
/// <param name="OperatingSystem">The OS (<see cref="RuntimeInformation.OSDescription"/>) and architecture.</param>
/// <param name="MachineName">The host name.</param>
/// <param name="ProcessorCount">Logical processors visible to the process.</param>
/// <param name="Device">The torch device the run computes on, or null if it uses none.</param>
/// <param name="GitCommit">The commit checked out in the working directory, or null outside a git working tree
/// (or without git).</param>
/// <param name="GitDirty">Whether the working tree differs from that commit (tracked changes or untracked files
/// that are not ignored); null when <paramref name="GitCommit"/> is.</param>
public sealed record RunManifest(
    DateTimeOffset StartedAt,
    string Command,
    JsonElement Config,
    long Seed,
    IReadOnlyDictionary<string, string> Versions,
    string Runtime,
    string OperatingSystem,
    string MachineName,
    int ProcessorCount,
    string? Device,
    string? GitCommit,
    bool? GitDirty)
{
    /// <summary>The recipe the run trains with, resolved (the named recipe with the config's overrides), as <c>Recipe.ToString</c> writes it.</summary>
    public string? ResolvedRecipe { get; init; }

    /// <summary>The file name <see cref="Write"/> uses.</summary>
    public const string FileName = "manifest.json";

    static readonly JsonSerializerOptions _options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Captures the manifest of a run starting now.
    /// </summary>
    /// <param name="command">The command line (e.g. <c>Environment.CommandLine</c>, or the CLI's parsed form).</param>
    /// <param name="config">The configuration as JSON.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="device">The device the run computes on. When given, libtorch's version is recorded too
    /// (<c>torch.__version__</c> loads TorchSharp's native backend, which a run with a device has loaded anyway);
    /// without one, capturing touches no native code.</param>
    /// <param name="workingDirectory">Where to ask git for the commit; the current directory if null.</param>
    /// <param name="time">The clock for <see cref="StartedAt"/>; the system clock if null.</param>
    public static RunManifest Capture(
        string command, JsonElement config, long seed, torch.Device? device = null,
        string? workingDirectory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        var versions = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["Trd.Core"] = InformationalVersion(typeof(Trd.Core.Numerics).Assembly),
            ["Trd.Runtime"] = InformationalVersion(typeof(RunManifest).Assembly),
            ["TorchSharp"] = InformationalVersion(typeof(torch).Assembly),
        };
        if (device is not null) versions["libtorch"] = torch.__version__;
        var (commit, dirty) = GitWorkingTree.Read(workingDirectory ?? Environment.CurrentDirectory);
        return new RunManifest(
            StartedAt: (time ?? TimeProvider.System).GetUtcNow(),
            Command: command,
            Config: config.Clone(),
            Seed: seed,
            Versions: versions,
            Runtime: RuntimeInformation.FrameworkDescription,
            OperatingSystem: $"{RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})",
            MachineName: Environment.MachineName,
            ProcessorCount: Environment.ProcessorCount,
            Device: device?.ToString(),
            GitCommit: commit,
            GitDirty: dirty);
    }

    /// <summary>
    /// <see cref="Capture(string, JsonElement, long, torch.Device?, string?, TimeProvider?)"/> with the configuration
    /// serialised by System.Text.Json (public properties, names as declared).
    /// </summary>
    public static RunManifest Capture(
        string command, object config, long seed, torch.Device? device = null,
        string? workingDirectory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var json = config is JsonElement element ? element : JsonSerializer.SerializeToElement(config, config.GetType());
        return Capture(command, json, seed, device, workingDirectory, time);
    }

    /// <summary>
    /// Writes <c>manifest.json</c> into <paramref name="runDirectory"/> (created if missing), atomically: a reader
    /// sees the old file or the new one, never part of one. Returns the file's path.
    /// </summary>
    public string Write(string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(runDirectory);
        var path = Path.Combine(runDirectory, FileName);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(this, _options);
        AtomicFile.Write(path, stream => stream.Write(bytes));
        return path;
    }

    /// <summary>Reads a manifest <see cref="Write"/> wrote (give the file or its run directory).</summary>
    public static RunManifest Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        return JsonSerializer.Deserialize<RunManifest>(File.ReadAllBytes(path), _options)
            ?? throw new InvalidDataException($"{path}: the manifest is null");
    }

    /// <summary>The component versions with "git": the commit's first 12 hex digits, " (dirty)" when the tree was, or
    /// "unknown" outside a working tree (what a study's and a grid's results record).</summary>
    public Dictionary<string, string> VersionsWithGit() =>
        new(Versions) { ["git"] = GitCommit is null ? "unknown" : GitCommit[..12] + (GitDirty == true ? " (dirty)" : "") };

    /// <summary>Field by field; <see cref="Config"/> as JSON (<see cref="JsonElement.DeepEquals"/>) and
    /// <see cref="Versions"/> as a set of pairs, so a manifest read back equals the one written.</summary>
    public bool Equals(RunManifest? other) =>
        other is not null
        && StartedAt == other.StartedAt
        && Command == other.Command
        && JsonElement.DeepEquals(Config, other.Config)
        && Seed == other.Seed
        && Versions.Count == other.Versions.Count
        && Versions.All(v => other.Versions.TryGetValue(v.Key, out var o) && o == v.Value)
        && Runtime == other.Runtime
        && OperatingSystem == other.OperatingSystem
        && MachineName == other.MachineName
        && ProcessorCount == other.ProcessorCount
        && Device == other.Device
        && GitCommit == other.GitCommit
        && GitDirty == other.GitDirty;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(StartedAt, Command, Seed, MachineName, GitCommit);

    static string InformationalVersion(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? assembly.GetName().Version?.ToString()
        ?? "unknown";
}

/// <summary>The git state of a directory, read by running the <c>git</c> command line.</summary>
public static class GitWorkingTree
{
    static readonly TimeSpan _timeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The commit checked out (<c>git rev-parse HEAD</c>) and whether the tree is dirty (<c>git status
    /// --porcelain</c> prints anything: tracked changes or untracked files that are not ignored). (null, null) when
    /// the directory is not in a git working tree, has no commit yet, or git cannot be run; never throws for those.
    /// </summary>
    /// <param name="directory">A directory inside the working tree.</param>
    /// <param name="git">The git executable (a name on PATH or a path).</param>
    public static (string? Commit, bool? Dirty) Read(string directory, string git = "git")
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(git);
        if (!Directory.Exists(directory)) return (null, null);
        var head = Run(git, directory, "rev-parse", "--verify", "HEAD");
        if (head is null) return (null, null);
        var commit = head.Trim();
        var status = Run(git, directory, "status", "--porcelain");
        return status is null ? (commit, null) : (commit, status.Length > 0);
    }

    /// <summary>git's standard output, or null if it could not start, failed, or timed out.</summary>
    static string? Run(string git, string directory, params string[] arguments)
    {
        var start = new ProcessStartInfo(git)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // Reading status must not take the index lock a concurrent git command may need.
        start.Environment["GIT_OPTIONAL_LOCKS"] = "0";
        start.Environment["GIT_TERMINAL_PROMPT"] = "0";
        Process? process;
        try
        {
            process = Process.Start(start);
        }
        catch (Exception e) when (e is Win32Exception or InvalidOperationException or PlatformNotSupportedException)
        {
            return null;
        }
        if (process is null) return null;
        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(_timeout))
            {
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                return null;
            }
            _ = error.Result;
            return process.ExitCode == 0 ? output.Result : null;
        }
    }
}
