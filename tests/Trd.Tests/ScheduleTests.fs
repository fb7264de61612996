module Trd.Tests.ScheduleTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

/// The schedule written another way: warmup as a fraction of the peak, decay through the identity
/// ½ (1 + cos πp) = cos²(πp / 2).
let private reference (peak: float) (warmup: int) (total: int) (floorRatio: float) (step: int) =
    if step < warmup then peak * (float (step + 1) / float warmup)
    elif total - 1 = warmup then peak
    else
        let p = float (step - warmup) / float (total - 1 - warmup)
        let c = cos (Math.PI * p / 2.0)
        floorRatio * peak + (1.0 - floorRatio) * peak * c * c

type private Config =
    { Peak: float; Warmup: int; Total: int; FloorRatio: float }
    override c.ToString() = $"peak {c.Peak}, warmup {c.Warmup}, total {c.Total}, floor ratio {c.FloorRatio}"

let private configs =
    gen {
        let! total = Gen.choose (1, 400)
        let! warmup = Gen.oneof [ Gen.choose (0, total); Gen.constant 0; Gen.constant total; Gen.constant (total - 1) ]
        let! peak = Gen.elements [ 5e-6; 1e-3; 0.1; 1.0; 3e2 ]
        let! floorRatio = Gen.elements [ 0.0; 0.1; 0.5; 0.999; 1.0 ]
        return { Peak = peak; Warmup = warmup; Total = total; FloorRatio = floorRatio }
    }
    |> Arb.fromGen

let private lr (c: Config) step = Schedule.learningRate c.Peak c.Warmup c.Total c.FloorRatio step

[<Tests>]
let tests =
    testList "Schedule" [
        testCase "the paper's schedule (peak 5e-6, warmup 0.1, floor 0.1) over 100 steps on hand values" <| fun () ->
            let w = Schedule.warmupSteps 0.1 100
            Expect.equal w 10 "warmup steps"
            let at = Schedule.learningRate 5e-6 w 100 0.1
            expectRel 1e-15 (at 0) 5e-7 "the first update runs at peak / warmupSteps, not 0"
            expectRel 1e-15 (at 4) 2.5e-6 "halfway through warmup"
            Expect.equal (at 9) 5e-6 "the last warmup step reaches the peak"
            Expect.equal (at 10) 5e-6 "the first decay step is at the peak"
            // midpoint of the decay: p = 44.5 / 89 = 1/2, cos = 0, halfway between peak and floor
            expectRel 1e-12 (Schedule.learningRate 5e-6 10 101 0.1 55) 2.75e-6 "decay midpoint"
            expectRel 1e-12 (at 99) 5e-7 "the last step is the floor"

        testCase "warmupSteps is ⌈ratio × total⌉ without binary-rounding surprises" <| fun () ->
            for ratio, total, expected in
                [ 0.1, 100, 10; 0.1, 30, 3; 0.1, 31, 4; 0.1, 1, 1; 0.0, 10, 0; 1.0, 10, 10; 0.15, 20, 3; 0.07, 100, 7; 0.1, 9, 1; 0.25, 7, 2 ] do
                Expect.equal (Schedule.warmupSteps ratio total) expected $"ratio {ratio}, total {total}"

        testCase "warmupSteps rejects ratios outside [0, 1] and totals below 1" <| fun () ->
            for ratio, total, name in [ -0.1, 10, "ratio"; 1.5, 10, "ratio"; nan, 10, "ratio"; 0.1, 0, "totalSteps" ] do
                let e = Expect.throwsC (fun () -> Schedule.warmupSteps ratio total |> ignore) id
                Expect.equal (e :?> ArgumentException).ParamName name $"ratio {ratio}, total {total}"

        testCase "a single step runs at the peak, with or without warmup" <| fun () ->
            Expect.equal (Schedule.learningRate 1e-3 0 1 0.1 0) 1e-3 "no warmup"
            Expect.equal (Schedule.learningRate 1e-3 1 1 0.1 0) 1e-3 "one warmup step"
            Expect.equal (Schedule.curve 1e-3 0.1 1 0.1) [| 1e-3 |] "curve"

        testCase "two steps without warmup go from the peak to the floor" <| fun () ->
            Expect.equal (Schedule.learningRate 1.0 0 2 0.1 0) 1.0 "first"
            expectRel 1e-15 (Schedule.learningRate 1.0 0 2 0.1 1) 0.1 "last"

        testCase "a decay phase of one step stays at the peak; floor ratio 1 is constant after warmup" <| fun () ->
            let c = Schedule.curve 2.0 0.9 10 0.1
            Expect.equal (Schedule.warmupSteps 0.9 10) 9 "warmup steps"
            Expect.equal c[8] 2.0 "the last warmup step is the peak"
            Expect.equal c[9] 2.0 "warmup = total − 1: the one decay step is the peak"
            Expect.equal (Array.init 10 (Schedule.learningRate 2.0 3 10 1.0) |> Array.skip 2) (Array.create 8 2.0) "floor ratio 1"

        testCase "bad arguments raise ArgumentException naming the argument" <| fun () ->
            for peak, warmup, total, floorRatio, step, name in
                [ 0.0, 1, 10, 0.1, 0, "peak"; -1.0, 1, 10, 0.1, 0, "peak"; nan, 1, 10, 0.1, 0, "peak"; infinity, 1, 10, 0.1, 0, "peak"
                  1.0, 1, 0, 0.1, 0, "totalSteps"; 1.0, -1, 10, 0.1, 0, "warmupSteps"; 1.0, 11, 10, 0.1, 0, "warmupSteps"
                  1.0, 1, 10, -0.1, 0, "floorRatio"; 1.0, 1, 10, 1.1, 0, "floorRatio"; 1.0, 1, 10, nan, 0, "floorRatio"
                  1.0, 1, 10, 0.1, -1, "step"; 1.0, 1, 10, 0.1, 10, "step" ] do
                let e = Expect.throwsC (fun () -> Schedule.learningRate peak warmup total floorRatio step |> ignore) id
                Expect.equal (e :?> ArgumentException).ParamName name $"{name}: {e.Message}"

        testProperty "the schedule equals the cos² reference (within 1e-12 × peak)" <|
            Prop.forAll configs (fun c ->
                for s in 0 .. c.Total - 1 do
                    expectAbs (1e-12 * c.Peak) (lr c s) (reference c.Peak c.Warmup c.Total c.FloorRatio s) $"{c}, step {s}")

        testProperty "warmup rises strictly from above 0 to the peak; afterwards the rate stays in [floor, peak] and never rises" <|
            Prop.forAll configs (fun c ->
                let xs = Array.init c.Total (lr c)
                let floor = c.FloorRatio * c.Peak
                Expect.isGreaterThan xs[0] 0.0 "the first update is not at 0"
                for s in 1 .. min c.Warmup c.Total - 1 do
                    Expect.isGreaterThan xs[s] xs[s - 1] $"warmup rises at step {s}"
                if c.Warmup > 0 then Expect.equal xs[c.Warmup - 1] c.Peak "the last warmup step is the peak"
                for s in c.Warmup .. c.Total - 1 do
                    Expect.isTrue (xs[s] >= floor * (1.0 - 1e-15) && xs[s] <= c.Peak) $"step {s}: {xs[s]} in [{floor}, {c.Peak}]"
                    if s > c.Warmup then Expect.isLessThanOrEqual xs[s] xs[s - 1] $"no rise at step {s}"
                if c.Warmup < c.Total then Expect.equal xs[c.Warmup] c.Peak "the first decay step is the peak"
                if c.Warmup < c.Total - 1 then expectRel 1e-12 xs[c.Total - 1] floor "the last step is the floor")

        testProperty "curve is the learning rate at every step with ⌈ratio × total⌉ warmup steps" <|
            Prop.forAll (Arb.fromGen (Gen.zip (Gen.choose (1, 300)) (Gen.elements [ 0.0; 0.05; 0.1; 0.33; 1.0 ]))) (fun (total, ratio) ->
                let w = Schedule.warmupSteps ratio total
                Expect.equal (Schedule.curve 5e-6 ratio total 0.1) (Array.init total (Schedule.learningRate 5e-6 w total 0.1)) "curve")
    ]
