module Trd.Tests.TorchTests

open Expecto
open TorchSharp
open Trd.Runtime

[<Tests>]
let tests =
    testSequenced <| testList "TorchSharp" [
        testCase "the runtime initialises TorchSharp and libtorch on this machine" <| fun () ->
            let device = Devices.Default
            use a = torch.arange(6L, dtype = torch.float32, device = device).reshape(2L, 3L)
            use b = a.matmul(a.t())
            // [[0,1,2],[3,4,5]] · its transpose = [[5,14],[14,50]]
            Expect.sequenceEqual (b.cpu().data<float32>().ToArray()) [| 5.0f; 14.0f; 14.0f; 50.0f |] "matmul on the default device"
            Expect.stringContains (Devices.Describe device) "libtorch" "device description"

        testCase "a libtorch error surfaces as a managed exception, not a crash" <| fun () ->
            use a = torch.zeros(2L, 3L)
            Expect.throws (fun () -> a.view(7L) |> ignore) "an invalid view raises"
    ]
