/// Sharded safetensors checkpoints and HF model directories: round trips, HF's names for Qwen3, checks against
/// an expected parameter set (every missing, unexpected and mis-shaped name in one error), and broken indexes.
module Trd.Tests.CheckpointDirectoryTests

open System
open System.Collections.Generic
open System.IO
open Expecto
open TorchSharp
open Trd.Runtime.Checkpoints
open Trd.Tests.CheckpointHelpers

type private ST = torch.ScalarType

/// Random-bit tensors with a config's HF names and shapes.
let private parametersFor (config: Qwen3Config) (dtype: torch.ScalarType) (seed: int) =
    let rng = Random seed
    let d = Dictionary<string, torch.Tensor>(StringComparer.Ordinal)
    for KeyValue(name, shape) in Qwen3Parameters.Ordered config do
        d[name] <- randomTensor rng dtype shape
    d

let private expectSameTensors (expected: IDictionary<string, torch.Tensor>) (actual: IDictionary<string, torch.Tensor>) =
    Expect.sequenceEqual (actual.Keys |> Seq.sort) (expected.Keys |> Seq.sort) "the same names"
    for KeyValue(name, t) in expected do
        let a = actual[name]
        Expect.equal a.dtype t.dtype $"{name}: dtype"
        Expect.sequenceEqual a.shape t.shape $"{name}: shape"
        Expect.isTrue (rawBytes a = rawBytes t) $"{name}: bytes identical"

let private filesIn (dir: string) = Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort

let private shardedTests =
    testList "sharded" [
        testCase "a sharded checkpoint round-trips bit-identically; shards are named model-0000i-of-0000n and hold what the index maps to them" <| fun () ->
            withTempDir (fun dir ->
                let original = parametersFor (Qwen3Config.Tiny()) ST.BFloat16 1
                let written = ShardedSafeTensors.Save(dir, original, 8192L)
                let n = written.Count - 1
                Expect.isGreaterThan n 1 "several shards"
                Expect.sequenceEqual (Seq.take n written) [ for i in 1 .. n -> $"model-%05d{i}-of-%05d{n}.safetensors" ] "HF shard names"
                Expect.equal written[n] "model.safetensors.index.json" "the index comes last"
                let sharded = ShardedSafeTensors.Open(Path.Combine(dir, written[n]))
                Expect.equal sharded.TotalSize (Nullable(original.Values |> Seq.sumBy SafeTensors.ByteCount)) "total_size"
                for KeyValue(name, file) in sharded.WeightMap do
                    Expect.isTrue ((SafeTensors.Open(Path.Combine(dir, file))).Contains name) $"{name} is in {file}"
                let loaded = sharded.LoadAll()
                try expectSameTensors original loaded finally disposeAll loaded
                disposeAll original)
        testCase "shards stay within the size limit, except a single tensor larger than it" <| fun () ->
            withTempDir (fun dir ->
                let rng = Random 2
                let tensors = Dictionary<string, torch.Tensor>()
                for i in 0 .. 9 do tensors[$"t{i}"] <- randomTensor rng ST.Float32 [| int64 (if i = 4 then 500 else 40) |]
                let written = ShardedSafeTensors.Save(dir, tensors, 400L)
                for file in written |> Seq.filter (fun f -> f.EndsWith ".safetensors") do
                    let shard = SafeTensors.Open(Path.Combine(dir, file))
                    let bytes = shard.Entries |> Seq.sumBy (fun e -> e.ByteCount)
                    Expect.isTrue (bytes <= 400L || shard.Entries.Count = 1) $"{file}: {bytes} bytes in {shard.Entries.Count} tensors"
                disposeAll tensors)
        testCase "writing the same sharded checkpoint twice gives byte-identical files" <| fun () ->
            withTempDir (fun dir ->
                let original = parametersFor (Qwen3Config.Tiny()) ST.Float16 3
                let a, b = Path.Combine(dir, "a"), Path.Combine(dir, "b")
                let written = ShardedSafeTensors.Save(a, original, 8192L)
                ShardedSafeTensors.Save(b, original, 8192L) |> ignore
                for file in written do
                    Expect.isTrue (File.ReadAllBytes(Path.Combine(a, file)) = File.ReadAllBytes(Path.Combine(b, file))) $"{file} identical"
                disposeAll original)
    ]

/// A two-shard checkpoint of tensors a, b (shard 1) and c (shard 2), whose index the test then edits.
let private twoShards (dir: string) =
    use a = torch.ones(2L)
    use b = torch.zeros(3L)
    use c = torch.ones(4L)
    ShardedSafeTensors.Save(dir, readOnlyDict [ "a", a; "b", b; "c", c ], 20L) |> ignore
    Path.Combine(dir, "model.safetensors.index.json")

let private editIndex (index: string) (edit: string -> string) = File.WriteAllText(index, edit (File.ReadAllText index))

let private brokenIndexTests =
    testList "broken sharded checkpoints raise a CheckpointException naming the file and tensor" [
        testCase "the index lists a tensor its shard does not hold" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                editIndex index (fun s -> s.Replace("\"weight_map\": {", "\"weight_map\": {\n    \"ghost\": \"model-00002-of-00002.safetensors\","))
                expectCheckpointError "model-00002-of-00002.safetensors" (Some "ghost") "does not hold it" (fun () -> ShardedSafeTensors.Open index |> ignore))
        testCase "a shard holds a tensor the index does not list" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                editIndex index (fun s -> s.Replace("\"b\": \"model-00001-of-00002.safetensors\",", ""))
                expectCheckpointError "model-00001-of-00002.safetensors" (Some "b") "does not list it" (fun () -> ShardedSafeTensors.Open index |> ignore))
        testCase "the index maps a tensor to another shard than the one holding it" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                editIndex index (fun s -> s.Replace("\"c\": \"model-00002-of-00002.safetensors\"", "\"c\": \"model-00001-of-00002.safetensors\""))
                let e = Expect.throwsC (fun () -> ShardedSafeTensors.Open index |> ignore) id
                Expect.isTrue (e :? CheckpointException) $"a CheckpointException: {e.Message}"
                Expect.stringContains e.Message "'c'" "names the tensor")
        testCase "the index names a shard that does not exist" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"))
                expectCheckpointError index (Some "c") "does not exist" (fun () -> ShardedSafeTensors.Open index |> ignore))
        testCase "the index names a file outside its directory" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                editIndex index (fun s -> s.Replace("\"c\": \"model-00002-of-00002.safetensors\"", "\"c\": \"../model-00002-of-00002.safetensors\""))
                expectCheckpointError index (Some "c") "not a plain file name" (fun () -> ShardedSafeTensors.Open index |> ignore))
        testCase "the index is not JSON" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                editIndex index (fun s -> s.Substring(0, s.Length / 2))
                expectCheckpointError index None "not valid JSON" (fun () -> ShardedSafeTensors.Open index |> ignore))
        testCase "the index has no weight_map" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                File.WriteAllText(index, """{"metadata": {"total_size": 36}}""")
                expectCheckpointError index None "no 'weight_map'" (fun () -> ShardedSafeTensors.Open index |> ignore))
        testCase "a damaged shard is reported by its own file name" <| fun () ->
            withTempDir (fun dir ->
                let index = twoShards dir
                let shard = Path.Combine(dir, "model-00002-of-00002.safetensors")
                File.WriteAllBytes(shard, (File.ReadAllBytes shard)[.. 20])
                expectCheckpointError shard None "" (fun () -> ShardedSafeTensors.Open index |> ignore))
    ]

let private qwen3Tests =
    testList "Qwen3 directories" [
        testCase "Qwen3Parameters gives HF's names and shapes: embedding, 11 per layer, final norm, lm_head unless tied" <| fun () ->
            let config = Qwen3Config.Tiny(vocabSize = 96, numHiddenLayers = 3)
            let shapes = Qwen3Parameters.Shapes config
            Expect.equal shapes.Count (1 + 11 * 3 + 1 + 1) "count"
            let expect name (shape: int64 list) = Expect.sequenceEqual shapes[name] shape name
            expect "model.embed_tokens.weight" [ 96L; 32L ]
            expect "model.layers.2.input_layernorm.weight" [ 32L ]
            expect "model.layers.2.self_attn.q_proj.weight" [ 32L; 32L ]
            expect "model.layers.2.self_attn.k_proj.weight" [ 16L; 32L ]
            expect "model.layers.2.self_attn.v_proj.weight" [ 16L; 32L ]
            expect "model.layers.2.self_attn.o_proj.weight" [ 32L; 32L ]
            expect "model.layers.2.self_attn.q_norm.weight" [ 8L ]
            expect "model.layers.2.self_attn.k_norm.weight" [ 8L ]
            expect "model.layers.2.post_attention_layernorm.weight" [ 32L ]
            expect "model.layers.2.mlp.gate_proj.weight" [ 64L; 32L ]
            expect "model.layers.2.mlp.up_proj.weight" [ 64L; 32L ]
            expect "model.layers.2.mlp.down_proj.weight" [ 32L; 64L ]
            expect "model.norm.weight" [ 32L ]
            expect "lm_head.weight" [ 96L; 32L ]
            let tied = Qwen3Parameters.Shapes(Qwen3Config.Tiny(tieWordEmbeddings = true))
            Expect.isFalse (tied.ContainsKey "lm_head.weight") "no lm_head when tied"
            let biased = Qwen3Parameters.Shapes(Qwen3Config.Tiny(attentionBias = true))
            Expect.sequenceEqual biased["model.layers.0.self_attn.k_proj.bias"] [ 16L ] "k_proj.bias with attention_bias"
            Expect.sequenceEqual biased["model.layers.0.self_attn.o_proj.bias"] [ 32L ] "o_proj.bias with attention_bias"
        for tied in [ false; true ] do
            for sharded in [ false; true ] do
                testCase $"a Qwen3 directory written by the runtime reloads bit-identically with its config (tied = {tied}, sharded = {sharded})" <| fun () ->
                    withTempDir (fun dir ->
                        let config = Qwen3Config.Tiny(tieWordEmbeddings = tied, torchDtype = ST.BFloat16, bosTokenId = Nullable 1L, eosTokenIds = [| 2L |])
                        let original = parametersFor config ST.BFloat16 7
                        let written = CheckpointDirectory.Save(dir, config, original, (if sharded then 10000L else CheckpointDirectory.DefaultMaxShardBytes))
                        Expect.equal (written |> Seq.exists (fun f -> f = "model.safetensors.index.json")) sharded "sharded exactly when asked"
                        let struct (loadedConfig, loaded) = CheckpointDirectory.LoadQwen3(dir)
                        try
                            Expect.equal loadedConfig config "config"
                            expectSameTensors original loaded
                        finally disposeAll loaded
                        disposeAll original)
        testCase "a tied checkpoint that also stores lm_head.weight loads, the copy ignored" <| fun () ->
            withTempDir (fun dir ->
                let config = Qwen3Config.Tiny(tieWordEmbeddings = true)
                let original = parametersFor config ST.Float32 8
                original["lm_head.weight"] <- original["model.embed_tokens.weight"].clone()
                CheckpointDirectory.Save(dir, config, original) |> ignore
                let struct (_, loaded) = CheckpointDirectory.LoadQwen3(dir)
                Expect.isFalse (loaded.ContainsKey "lm_head.weight") "not loaded"
                disposeAll loaded
                disposeAll original)
        testCase "saving single-file over a sharded directory (and back) leaves one checkpoint: stale index and shards removed" <| fun () ->
            withTempDir (fun dir ->
                let config = Qwen3Config.Tiny()
                let original = parametersFor config ST.Float32 9
                CheckpointDirectory.Save(dir, config, original, 10000L) |> ignore
                CheckpointDirectory.Save(dir, config, original) |> ignore
                Expect.sequenceEqual (filesIn dir) [ "config.json"; "model.safetensors" ] "single"
                CheckpointDirectory.Save(dir, config, original, 30000L) |> ignore
                Expect.isFalse (File.Exists(Path.Combine(dir, "model.safetensors"))) "stale single file removed"
                let loaded = (CheckpointDirectory.OpenTensors dir).LoadAll()
                try expectSameTensors original loaded finally disposeAll loaded
                disposeAll original)
    ]

let private expectedSetTests =
    testList "checks against the expected parameters" [
        testCase "every missing and every unexpected parameter is named in one error, before any data is read" <| fun () ->
            withTempDir (fun dir ->
                let config = Qwen3Config.Tiny()
                let original = parametersFor config ST.Float32 10
                for name in [ "model.norm.weight"; "model.layers.1.mlp.up_proj.weight" ] do
                    original[name].Dispose()
                    original.Remove name |> ignore
                original["model.layers.0.extra.weight"] <- torch.zeros(2L)
                original["rotary.inv_freq"] <- torch.zeros(2L)
                CheckpointDirectory.Save(dir, config, original) |> ignore
                let path = Path.Combine(dir, "model.safetensors")
                let check () = CheckpointDirectory.Load(dir, Qwen3Parameters.Shapes config) |> disposeAll
                expectCheckpointError path (Some "model.layers.1.mlp.up_proj.weight") "2 missing" check
                for name in [ "model.norm.weight"; "model.layers.0.extra.weight"; "rotary.inv_freq" ] do
                    expectCheckpointError path None $"{name}" check
                expectCheckpointError path None "2 unexpected" check
                disposeAll original)
        testCase "a shape mismatch names the tensor and both shapes" <| fun () ->
            withTempDir (fun dir ->
                let config = Qwen3Config.Tiny()
                let original = parametersFor config ST.Float32 11
                let expected = Dictionary<string, int64[]>(Qwen3Parameters.Shapes config)
                expected["model.embed_tokens.weight"] <- [| 129L; 32L |]
                CheckpointDirectory.Save(dir, config, original) |> ignore
                expectCheckpointError "model.safetensors" (Some "model.embed_tokens.weight") "is [128, 32] in model.safetensors, expected [129, 32]"
                    (fun () -> CheckpointDirectory.Load(dir, expected) |> disposeAll)
                disposeAll original)
        testCase "LoadInto fills existing float32 parameters from a BF16 checkpoint; on a mismatch it copies nothing" <| fun () ->
            withTempDir (fun dir ->
                let config = Qwen3Config.Tiny()
                let shapes = Qwen3Parameters.Shapes config
                let original = Dictionary<string, torch.Tensor>()
                for KeyValue(name, shape) in shapes do original[name] <- torch.randn(shape).to_type(torch.bfloat16)
                CheckpointDirectory.Save(dir, config, original) |> ignore
                let parameters = Dictionary<string, torch.Tensor>()
                for KeyValue(name, shape) in shapes do parameters[name] <- torch.zeros(shape)
                CheckpointDirectory.LoadInto(dir, parameters)
                for KeyValue(name, p) in parameters do
                    Expect.isTrue (rawBytes p = rawBytes (original[name].to_type(torch.float32))) $"{name} converted exactly"
                // Same dtype: read straight into the destination's memory.
                let direct = Dictionary<string, torch.Tensor>()
                for KeyValue(name, shape) in shapes do direct[name] <- torch.zeros(shape, dtype = torch.bfloat16)
                CheckpointDirectory.LoadInto(dir, direct)
                for KeyValue(name, p) in direct do Expect.isTrue (rawBytes p = rawBytes original[name]) $"{name} identical"
                // One wrong shape: nothing is copied, not even the tensors that would fit.
                let fresh = Dictionary<string, torch.Tensor>()
                for KeyValue(name, shape) in shapes do fresh[name] <- torch.zeros(shape)
                fresh["model.norm.weight"] <- torch.zeros(31L)
                expectCheckpointError "model.safetensors" (Some "model.norm.weight") "another shape" (fun () -> CheckpointDirectory.LoadInto(dir, fresh))
                for KeyValue(name, p) in fresh do Expect.equal (p.abs().sum().item<float32>()) 0.0f $"{name} untouched"
                disposeAll original; disposeAll parameters; disposeAll direct; disposeAll fresh)
        testCase "a directory with both model.safetensors and an index, or with neither, is refused" <| fun () ->
            withTempDir (fun dir ->
                expectCheckpointError dir None "neither" (fun () -> CheckpointDirectory.OpenTensors dir |> ignore)
                twoShards dir |> ignore
                use a = torch.ones(1L)
                SafeTensors.Save(Path.Combine(dir, "model.safetensors"), readOnlyDict [ "a", a ])
                expectCheckpointError dir None "holds both" (fun () -> CheckpointDirectory.OpenTensors dir |> ignore))
    ]

[<Tests>]
let tests =
    testSequenced <| testList "Checkpoints" [ shardedTests; brokenIndexTests; qwen3Tests; expectedSetTests ]
