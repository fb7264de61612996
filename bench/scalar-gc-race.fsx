// The GC race behind the study's rare native crashes (docs/performance.md, "Stress"), in isolation: TorchSharp makes a
// Scalar (a native object with a finalizer, tracked by no DisposeScope) for a number argument and passes its raw
// handle to libtorch. Once the handle is read nothing references the wrapper, so a GC during the native call can
// finalize it under libtorch: "Expected false to be true" (a freed Scalar's tag) or a segfault. A second thread forces
// collections; "implicit" passes a temporary Scalar, "kept" holds it in a local until the call returns.
//   dotnet fsi bench/scalar-gc-race.fsx implicit 40     (measured 2026-12-02: 23 errors in 2,207,330 calls)
//   dotnet fsi bench/scalar-gc-race.fsx kept 40         (0 errors in 1,751,421 calls)
#r "nuget: TorchSharp, 0.107.0"
#r "nuget: libtorch-cpu-linux-x64, 2.10.0"
#load "../scripts/LoadTorchSharp.fsx"
open System
open System.Threading
open TorchSharp
let mode = fsi.CommandLineArgs.[1]
let seconds = float fsi.CommandLineArgs.[2]
let stop = ref false
// Another thread that allocates and collects: the GC it triggers can run while the main thread is inside a native call.
let pressure = Thread((fun () ->
    while not stop.Value do
        let _ = Array.zeroCreate<byte> 10000
        GC.Collect(0, GCCollectionMode.Forced, false)), IsBackground = true)
pressure.Start()
let t = torch.ones(64L)
let clock = Diagnostics.Stopwatch.StartNew()
let mutable n = 0L
let mutable errors = 0
while clock.Elapsed.TotalSeconds < seconds do
    try
        if mode = "implicit" then
            t.mul_((1.0000001).ToScalar()) |> ignore                      // a Scalar made by implicit conversion, dead once its handle is read
        else
            use s = (1.0000001).ToScalar()                 // held in a local and disposed after the call
            t.mul_(s) |> ignore
            GC.KeepAlive s
    with e -> errors <- errors + 1; (if errors <= 3 then eprintfn "%s" (e.Message.Split('\n').[0]))
    n <- n + 1L
stop.Value <- true
printfn "%s: %d calls, %d errors, value %g" mode n errors (t.[0].item<float32>())
