using System.Diagnostics;

namespace Trd.Bench;

/// <summary>
/// The suite runs from a private copy of its build output. Builds hard-link package and project outputs
/// (Directory.Build.props), so rebuilding Trd.Runtime while a 20-minute suite runs would otherwise change the code
/// under test between configurations, or hand a child a half-written DLL.
/// </summary>
static class Snapshot
{
    const string Variable = "TRD_BENCH_SNAPSHOT";

    /// <summary>Whether this process already runs from a snapshot (or was told not to use one).</summary>
    public static bool Active => Environment.GetEnvironmentVariable(Variable) is not null;

    /// <summary>Copies this executable's directory (real copies, not links), runs the same command from there, cleans up.</summary>
    public static int RunFromCopy(string[] args)
    {
        var source = AppContext.BaseDirectory;
        var target = Path.Combine(Path.GetTempPath(), $"trd-bench-{Environment.ProcessId}");
        Console.Error.WriteLine($"copying {source} to {target} (the suite runs from this snapshot)");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }
        try
        {
            var self = Environment.ProcessPath!;
            var viaHost = Path.GetFileNameWithoutExtension(self) == "dotnet";
            var start = new ProcessStartInfo(viaHost ? self : Path.Combine(target, Path.GetFileName(self))) { UseShellExecute = false };
            if (viaHost) start.ArgumentList.Add(Path.Combine(target, Path.GetFileName(typeof(Snapshot).Assembly.Location)));
            foreach (var a in args) start.ArgumentList.Add(a);
            start.Environment[Variable] = source;
            using var child = Process.Start(start)!;
            child.WaitForExit();
            return child.ExitCode;
        }
        finally
        {
            Directory.Delete(target, recursive: true);
        }
    }

    /// <summary>The repository's commit and whether src/ had uncommitted changes when the suite started, via git.</summary>
    public static string CodeVersion(string root)
    {
        string Git(string arguments)
        {
            var start = new ProcessStartInfo("git", $"-C \"{root}\" {arguments}") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var git = Process.Start(start)!;
            var output = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 ? output : throw new InvalidOperationException($"git {arguments} failed");
        }
        try
        {
            var commit = Git("rev-parse --short HEAD");
            var dirty = Git("status --porcelain -- src").Length > 0;
            return dirty ? $"commit {commit} with uncommitted changes in src/" : $"commit {commit}";
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return "unknown (no git)";
        }
    }
}
