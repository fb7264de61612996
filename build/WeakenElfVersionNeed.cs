// MSBuild task: copy an ELF shared library, marking one entry of its version-needs table
// (.gnu.version_r) weak (VER_FLG_WEAK), so that a loader whose library lacks that version
// still loads it.
//
// Why: TorchSharp 0.107.0's libLibTorchSharp.so declares a need for GLIBCXX_3.4.32 (GCC 13's
// libstdc++) for one symbol, _ZSt21ios_base_library_initv, that no relocation uses. Debian 12
// and Ubuntu 22.04 ship GCC 12's libstdc++, so the dynamic loader refuses the library and
// TorchSharp fails at first use. A weak version need is checked but not required (glibc's
// dl-version.c only warns), so the library loads and runs unchanged.
//
// The task never edits its input (which lives in the NuGet cache); it writes a new file.
// It is compiled by RoslynCodeTaskFactory from build/TorchSharp.targets and used both by
// every build (Copy-local swap) and by scripts/LoadTorchSharp.fsx (through build/PatchLibTorchSharp.proj).
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class WeakenElfVersionNeed : Task
{
    /// <summary>The library to read (left untouched).</summary>
    [Required] public string InputFile { get; set; } = "";

    /// <summary>Where the patched copy is written (atomically: temporary file, then rename).</summary>
    [Required] public string OutputFile { get; set; } = "";

    /// <summary>The version-need name to weaken, e.g. GLIBCXX_3.4.32.</summary>
    [Required] public string VersionName { get; set; } = "";

    /// <summary>True when the entry was found and the patched copy written.</summary>
    [Output] public bool Patched { get; set; }

    const ushort VerFlgWeak = 0x2;
    const uint ShtGnuVerneed = 0x6ffffffe;

    public override bool Execute()
    {
        try
        {
            var bytes = File.ReadAllBytes(InputFile);
            var entry = FindVersionNeed(bytes, VersionName, InputFile);
            if (entry < 0)
            {
                Log.LogMessage(MessageImportance.Low, $"{InputFile}: no version need {VersionName}; copied unchanged.");
                Patched = false;
            }
            else
            {
                var flagsAt = (int)entry + 4; // Elf64_Vernaux: vna_hash u32, vna_flags u16, ...
                var flags = BitConverter.ToUInt16(bytes, flagsAt);
                BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(bytes, flagsAt);
                Patched = true;
                Log.LogMessage(MessageImportance.Normal, $"{InputFile}: marked version need {VersionName} weak -> {OutputFile}");
            }
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(OutputFile)));
            // netstandard2.0 (what RoslynCodeTaskFactory compiles against) has no File.Move overwrite.
            var temporary = OutputFile + ".tmp" + System.Diagnostics.Process.GetCurrentProcess().Id;
            File.WriteAllBytes(temporary, bytes);
            if (File.Exists(OutputFile)) File.Delete(OutputFile);
            File.Move(temporary, OutputFile);
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            Log.LogError($"WeakenElfVersionNeed: {InputFile}: {e.Message}");
            return false;
        }
    }

    /// <summary>The file offset of the Elf64_Vernaux whose name is <paramref name="name"/>, or -1.</summary>
    static long FindVersionNeed(byte[] b, string name, string file)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF is supported");
        long shoff = (long)BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        if (shoff <= 0 || shoff + (long)shentsize * shnum > b.Length)
            throw new InvalidDataException("section header table lies outside the file");
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (BitConverter.ToUInt32(b, (int)sh + 4) != ShtGnuVerneed) continue;
            long offset = (long)BitConverter.ToUInt64(b, (int)sh + 24);
            int link = (int)BitConverter.ToUInt32(b, (int)sh + 40);
            int count = (int)BitConverter.ToUInt32(b, (int)sh + 44); // sh_info: number of Verneed entries
            long strtab = (long)BitConverter.ToUInt64(b, (int)(shoff + (long)link * shentsize) + 24);
            long vn = offset;
            for (int n = 0; n < count; n++)
            {
                Check(vn + 16, b, file);
                int auxCount = BitConverter.ToUInt16(b, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    Check(aux + 16, b, file);
                    long nameAt = strtab + BitConverter.ToUInt32(b, (int)aux + 8);
                    if (ReadCString(b, nameAt, file) == name) return aux;
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }
                uint next = BitConverter.ToUInt32(b, (int)vn + 12);
                if (next == 0) break;
                vn += next;
            }
        }
        return -1;
    }

    static void Check(long end, byte[] b, string file)
    {
        if (end > b.Length) throw new InvalidDataException("version-needs table runs past the end of the file");
    }

    static string ReadCString(byte[] b, long at, string file)
    {
        Check(at + 1, b, file);
        int end = Array.IndexOf(b, (byte)0, (int)at);
        if (end < 0) throw new InvalidDataException("unterminated string in the dynamic string table");
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}

/// <summary>
/// Whether the system's libstdc++ already defines a version (then no patch is needed).
/// Looks in the directories the dynamic loader searches by default on Debian/Ubuntu/Fedora,
/// and in LD_LIBRARY_PATH.
/// </summary>
public sealed class SystemLibraryDefinesVersion : Task
{
    [Required] public string LibraryName { get; set; } = "";
    [Required] public string VersionName { get; set; } = "";
    [Output] public bool Defines { get; set; }
    [Output] public string Found { get; set; } = "";

    public override bool Execute()
    {
        var dirs = new System.Collections.Generic.List<string>();
        var ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
        dirs.AddRange(new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib" });
        var needle = Encoding.ASCII.GetBytes(VersionName + "\0");
        foreach (var dir in dirs)
        {
            var path = Path.Combine(dir, LibraryName);
            if (!File.Exists(path)) continue;
            Found = path;
            Defines = Contains(File.ReadAllBytes(path), needle);
            Log.LogMessage(MessageImportance.Low, $"{path} {(Defines ? "defines" : "lacks")} {VersionName}");
            return true;
        }
        Log.LogMessage(MessageImportance.Low, $"{LibraryName} not found in the default library directories");
        return true;
    }

    static bool Contains(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (haystack[i] != needle[0]) continue;
            int j = 1;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return true;
        }
        return false;
    }
}
