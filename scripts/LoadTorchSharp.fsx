// Makes TorchSharp from the NuGet cache load in `dotnet fsi` on stock Debian 12 / Ubuntu 22.04.
//
//   #r "nuget: TorchSharp, 0.107.0"
//   #r "nuget: libtorch-cpu-linux-x64, 2.10.0"
//   #load "LoadTorchSharp.fsx"          // before the first use of torch
//
// libLibTorchSharp.so (TorchSharp 0.107.0) needs GLIBCXX_3.4.32, which GCC 12's libstdc++ lacks, for one
// symbol no relocation uses. This script preloads libtorch from its package, tries the package's
// libLibTorchSharp.so, and, if the system refuses it, loads a copy whose version need is marked weak
// (written once into ~/.cache/trd by build/PatchLibTorchSharp.proj, the same task the build uses).
// TorchSharp then finds the already-loaded library by its soname. The NuGet cache is never modified.
#nowarn "9"

open System
open System.IO
open System.Runtime.InteropServices

module LoadTorchSharp =

    let private fail (message: string) = raise (InvalidOperationException("LoadTorchSharp.fsx: " + message))

    /// …/torchsharp/0.107.0/lib/net8.0/TorchSharp.dll → …/torchsharp/0.107.0
    let private torchSharpPackage =
        let dll = typeof<TorchSharp.torch>.Assembly.Location
        if String.IsNullOrEmpty dll then fail "TorchSharp is not loaded: #r \"nuget: TorchSharp, 0.107.0\" first"
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName dll, "..", ".."))

    let private packagesRoot = Path.GetFullPath(Path.Combine(torchSharpPackage, "..", ".."))

    /// The native folder of the libtorch package restored beside TorchSharp (CPU build; the newest if several).
    /// (torch.__version__ would name the expected one, but reading it initialises TorchSharp: too early here.)
    let private libtorchNative =
        let packageDir = Path.Combine(packagesRoot, "libtorch-cpu-linux-x64")
        let natives =
            if Directory.Exists packageDir then
                Directory.GetDirectories packageDir
                |> Array.map (fun v -> Path.Combine(v, "runtimes", "linux-x64", "native"))
                |> Array.filter (fun d -> File.Exists(Path.Combine(d, "libtorch_cpu.so")))
                |> Array.sortByDescending (fun d -> Version.TryParse(Path.GetFileName(Path.GetFullPath(Path.Combine(d, "..", "..", "..")))) |> function | true, v -> v | _ -> Version())
            else [||]
        if natives.Length = 0 then
            fail $"libtorch for linux-x64 is not restored under {packageDir}: add #r \"nuget: libtorch-cpu-linux-x64, 2.10.0\" before loading this script"
        natives[0]

    let private original = Path.Combine(torchSharpPackage, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

    let private patchedCopy () =
        let cacheRoot =
            match Environment.GetEnvironmentVariable "XDG_CACHE_HOME" with
            | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache")
            | dir -> dir
        let target = Path.Combine(cacheRoot, "trd", "torchsharp", Path.GetFileName torchSharpPackage, "libLibTorchSharp.so")
        if not (File.Exists target) || File.GetLastWriteTimeUtc target < File.GetLastWriteTimeUtc original then
            let project = Path.Combine(__SOURCE_DIRECTORY__, "..", "build", "PatchLibTorchSharp.proj")
            let psi = Diagnostics.ProcessStartInfo("dotnet", [ "msbuild"; project; "-nologo"; "-v:q"; $"-p:Library={original}"; $"-p:PatchedCopy={target}" ])
            psi.RedirectStandardOutput <- true
            psi.RedirectStandardError <- true
            use p = Diagnostics.Process.Start psi
            let output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd()
            p.WaitForExit()
            if p.ExitCode <> 0 || not (File.Exists target) then fail $"patching {original} failed:\n{output}"
        target

    /// The path of the libLibTorchSharp.so that was loaded (the package's own, or the patched copy).
    let loaded =
        if not (RuntimeInformation.IsOSPlatform OSPlatform.Linux) then "(not Linux: nothing to do)"
        else
            // libtorch first, by absolute path: libLibTorchSharp.so's NEEDED entries then resolve by soname.
            for lib in [ "libc10.so"; "libtorch_cpu.so"; "libtorch.so" ] do
                NativeLibrary.Load(Path.Combine(libtorchNative, lib)) |> ignore
            let mutable handle = IntPtr.Zero
            if NativeLibrary.TryLoad(original, &handle) then original
            else
                let patched = patchedCopy ()
                NativeLibrary.Load patched |> ignore
                patched
