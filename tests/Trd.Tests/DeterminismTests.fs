/// Runs that repeat bit for bit on one machine: two `trd run`s of configs/tiny.json into different directories (two
/// processes) write the same bytes, timestamps and durations aside; two trainings of a gym model write the same
/// model.safetensors, whatever torch's global generator holds (it is seeded differently in every process).
module Trd.Tests.DeterminismTests

open System
open System.Diagnostics
open System.IO
open System.Security.Cryptography
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open Trd.Runtime.Gym

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-det-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private hash (bytes: byte[]) = Convert.ToHexStringLower(SHA256.HashData bytes)

/// Files whose whole content is a record of when and how fast (logs, manifests, TensorBoard events, the rendered
/// report, which prints the study's date), in a run directory or any run directory below it.
let private isTimeRecord (relative: string) =
    let parts = relative.Split '/'
    parts |> Array.exists (fun p -> p = "logs" || p = "tensorboard")
    || Array.last parts = "manifest.json" || Array.last parts = "report.html"

/// Keys that hold a time or a rate measured by the clock.
let private clockKeys = set [ "wall_time"; "tokens_per_second"; "seconds"; "started"; "duration_seconds" ]

let rec private withoutClock (node: JsonNode) =
    match node with
    | :? JsonObject as o ->
        for key in o |> Seq.map (fun kv -> kv.Key) |> Seq.toArray do
            if clockKeys.Contains key then o.Remove key |> ignore else withoutClock o[key]
    | :? JsonArray as a -> for item in a do withoutClock item
    | _ -> ()

/// A run directory's files (relative path → hash), with clock fields taken out of JSON and JSON Lines files.
let fingerprint (run: string) =
    Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories)
    |> Seq.map (fun f -> Path.GetRelativePath(run, f).Replace('\\', '/'), f)
    |> Seq.filter (fun (relative, _) -> not (isTimeRecord relative))
    |> Seq.map (fun (relative, path) ->
        let content =
            if relative.EndsWith ".jsonl" then
                File.ReadAllLines path
                |> Array.map (fun line -> let n = JsonNode.Parse line in withoutClock n; n.ToJsonString())
                |> String.concat "\n" |> Text.Encoding.UTF8.GetBytes
            elif relative.EndsWith ".json" then
                let n = JsonNode.Parse(File.ReadAllText path) in withoutClock n; Text.Encoding.UTF8.GetBytes(n.ToJsonString())
            else File.ReadAllBytes path
        relative, hash content)
    |> Map.ofSeq

let private trd (args: string list) =
    let psi = ProcessStartInfo("dotnet", CliTests.trdDll.Force() :: args, WorkingDirectory = TestData.repositoryRoot,
                               RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then p.Kill true; failwithf "trd %A timed out" args
    Expect.equal p.ExitCode 0 $"trd {args} exits 0: {err.Result}{out.Result}"

[<Tests>]
let tests =
    testSequenced <| testList "Determinism" [
        test "two trd run of configs/tiny.json in two processes write the same bytes (clock fields aside)" {
            let a, b = tempDir (), tempDir ()
            let config = Path.Combine(TestData.repositoryRoot, "configs", "tiny.json")
            trd [ "run"; "--config"; config; "--out"; a ]
            trd [ "run"; "--config"; config; "--out"; b ]
            let fa, fb = fingerprint a, fingerprint b
            Expect.sequenceEqual (Map.keys fb) (Map.keys fa) "the same files"
            for KeyValue(relative, h) in fa do Expect.equal fb[relative] h $"{relative} is the same"
            // What the issue names, present and compared: the checkpoint's adapter, optimiser and state, the corpus,
            // the evaluation samples.
            for expected in [ "adapter/adapter_model.safetensors"; "optimizer.safetensors"; "trainer_state.json"; "corpus/rollouts.jsonl"
                              "corpus/refinements.jsonl"; "eval/trained/"; "eval/base/" ] do
                Expect.isTrue (fa.Keys |> Seq.exists (fun k -> k.Contains expected)) $"compares {expected}"
        }

        test "the study's gym models are the shipped bytes: installed into an empty cache, not trained" {
            let cache = tempDir ()
            for recipe in [ for m in 1 .. 3 do GymModels.Student.WithModelSeed m; GymModels.Teacher.WithModelSeed m ] do
                Expect.isTrue (GymReference.Has recipe) $"{recipe.Name}-{recipe.Key} is shipped (refresh src/Trd.Runtime/Gym/reference after changing a recipe: docs/gym.md)"
                let dir = GymModels.Ensure(recipe, cache)
                Expect.equal (hash (File.ReadAllBytes(Path.Combine(dir, "model.safetensors")))) (GymReference.ModelHash recipe) "model.safetensors is the shipped one"
                // The shipped recipe.json is this code's recipe: the key hashes it, and the file says so too.
                Expect.equal (File.ReadAllText(Path.Combine(dir, "recipe.json"))) (recipe.ToJson()) "recipe.json"
                Expect.equal (GymModels.ReadCard(dir).Key) recipe.Key "card.json's key"
                use model = Trd.Runtime.Models.Qwen3Checkpoint.Load(dir)
                let tokenizer = Trd.Runtime.Tokenization.Qwen3Tokenizer.FromDirectory dir
                Expect.isLessThanOrEqual tokenizer.VocabularySize model.Config.VocabSize "the written tokenizer fits the model"
        }

        test "a gym model trained twice (torch's global generator reseeded between) has the same bytes" {
            let recipe = GymModels.StudentPretrain.WithSteps 40
            let train (globalSeed: int64) =
                torch.random.manual_seed globalSeed |> ignore
                let cache = tempDir ()
                let dir = GymModels.Ensure(recipe, cache)
                let card = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "card.json")))
                withoutClock card
                hash (File.ReadAllBytes(Path.Combine(dir, "model.safetensors"))), card.ToJsonString()
            let modelA, cardA = train 1L
            let modelB, cardB = train 987654321L
            Expect.equal modelB modelA "model.safetensors"
            Expect.equal cardB cardA "card.json (the validation samples' accuracies and the loss curve)"
        }
    ]
