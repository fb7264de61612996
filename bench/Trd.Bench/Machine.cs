using System.Text.RegularExpressions;

namespace Trd.Bench;

/// <summary>What the benchmark reads about the machine and about its own process from /proc (Linux only).</summary>
static class Machine
{
    public const double GiB = 1024.0 * 1024.0 * 1024.0;

    /// <summary>A field of /proc/self/status in bytes (VmRSS: resident now, VmHWM: peak resident).</summary>
    public static long StatusBytes(string field) => KiB("/proc/self/status", field) * 1024;

    /// <summary>
    /// Resets this process's peak-RSS counter to its current RSS (writing 5 to /proc/self/clear_refs, Linux ≥ 4.0),
    /// so that VmHWM afterwards covers only what ran since. False where the kernel refuses it.
    /// </summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// CPU seconds all processes have spent busy (user, nice, system, irq, softirq, steal) since boot, summed over
    /// cores, from /proc/stat (USER_HZ = 100). Minus this process's own CPU time, it shows what else ran.
    /// </summary>
    public static double BusyCpuSeconds()
    {
        var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var busy = new[] { 1, 2, 3, 6, 7, 8 }.Sum(i => long.Parse(f[i]));
        return busy / 100.0;
    }

    /// <summary>A field of /proc/meminfo in bytes (MemTotal, MemAvailable).</summary>
    public static long MemInfoBytes(string field) => KiB("/proc/meminfo", field) * 1024;

    public static string CpuModel()
    {
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? "unknown CPU" : line[(line.IndexOf(':') + 1)..].Trim();
    }

    /// <summary>The CPU flags that decide how fast bf16 and fp32 matmuls can be.</summary>
    public static string MatmulFlags()
    {
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        var flags = line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        string[] wanted = { "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile" };
        var present = wanted.Where(flags.Contains).ToArray();
        return present.Length == 0 ? "none of avx2/avx512/amx" : string.Join(" ", present);
    }

    static long KiB(string file, string field)
    {
        foreach (var line in File.ReadLines(file))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var m = Regex.Match(line, @"(\d+)\s*kB");
            if (m.Success) return long.Parse(m.Groups[1].Value);
        }
        throw new InvalidOperationException($"{field} not found in {file}");
    }
}
