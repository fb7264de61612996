/// Qwen3Config from HF's config.json: real files parse, every required field and every unsupported variant is
/// an error naming the file and the field, and the JSON the runtime writes reads back equal.
module Trd.Tests.Qwen3ConfigTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open Trd.Runtime.Checkpoints
open Trd.Tests.CheckpointHelpers

/// Qwen/Qwen3-0.6B's config.json as transformers 4.51 wrote it.
let private qwen3_0_6B = """{
  "architectures": [
    "Qwen3ForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 1024,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "max_position_embeddings": 40960,
  "max_window_layers": 28,
  "model_type": "qwen3",
  "num_attention_heads": 16,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000,
  "sliding_window": null,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
}
"""

/// The 0.6B config with one edit to its JSON object.
let private edited (edit: JsonObject -> unit) =
    let o = JsonNode.Parse(qwen3_0_6B).AsObject()
    edit o
    o.ToJsonString()

/// Parsing raises a CheckpointException naming the file and the field, with the fragment in its message.
let private expectFieldError (field: string) (fragment: string) (json: string) =
    let parse () = Qwen3Config.Parse(json, "Qwen3-test/config.json") |> ignore
    expectCheckpointError "Qwen3-test/config.json" None $"field '{field}'" parse
    expectCheckpointError "Qwen3-test/config.json" None fragment parse

let private required =
    [ "vocab_size"; "hidden_size"; "intermediate_size"; "num_hidden_layers"; "num_attention_heads"; "num_key_value_heads"
      "head_dim"; "rope_theta"; "rms_norm_eps"; "tie_word_embeddings"; "max_position_embeddings"; "torch_dtype"; "model_type" ]

[<Tests>]
let tests =
    testList "Qwen3Config" [
        testCase "Qwen3-0.6B's config.json parses to its values" <| fun () ->
            let c = Qwen3Config.Parse qwen3_0_6B
            Expect.equal (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers) (151936, 1024, 3072, 28) "sizes"
            Expect.equal (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.MaxPositionEmbeddings) (16, 8, 128, 40960) "attention"
            Expect.equal (c.RopeTheta, c.RmsNormEps, c.TieWordEmbeddings, c.AttentionBias) (1e6, 1e-6, true, false) "constants"
            Expect.equal c.TorchDtype torch.ScalarType.BFloat16 "torch_dtype"
            Expect.equal c.BosTokenId (Nullable 151643L) "bos"
            Expect.sequenceEqual c.EosTokenIds [ 151645L ] "eos"
        testCase "transformers 5's spelling (dtype, rope_parameters.rope_theta, eos list) parses to the same values" <| fun () ->
            let json =
                edited (fun o ->
                    o.Remove "torch_dtype" |> ignore
                    o.Remove "rope_theta" |> ignore
                    o.Remove "rope_scaling" |> ignore
                    o["dtype"] <- JsonValue.Create "bfloat16"
                    o["rope_parameters"] <- JsonNode.Parse """{"rope_type": "default", "rope_theta": 1000000.0}"""
                    o["eos_token_id"] <- JsonNode.Parse "[151645, 151643]")
            let c = Qwen3Config.Parse json
            Expect.equal c.RopeTheta 1e6 "rope_theta"
            Expect.equal c.TorchDtype torch.ScalarType.BFloat16 "dtype"
            Expect.sequenceEqual c.EosTokenIds [ 151645L; 151643L ] "eos list"
        testCase "head_dim is not derived from hidden_size / num_attention_heads (transformers would default it to 128): a config without it is an error" <| fun () ->
            edited (fun o -> o.Remove "head_dim" |> ignore) |> expectFieldError "head_dim" "is missing"
        for field in required do
            testCase $"a config.json without {field} is an error naming the file and the field" <| fun () ->
                edited (fun o -> o.Remove field |> ignore) |> expectFieldError field "is missing"
        testCase "another architecture (Llama) is refused, naming model_type" <| fun () ->
            edited (fun o -> o["model_type"] <- JsonValue.Create "llama"; o["architectures"] <- JsonNode.Parse """["LlamaForCausalLM"]""")
            |> expectFieldError "model_type" "is 'llama'"
        testCase "a Qwen3 base model without its LM head (Qwen3Model) is refused, naming architectures" <| fun () ->
            edited (fun o -> o["architectures"] <- JsonNode.Parse """["Qwen3Model"]""") |> expectFieldError "architectures" "Qwen3Model"
        testCase "an activation other than silu is refused" <| fun () ->
            edited (fun o -> o["hidden_act"] <- JsonValue.Create "gelu") |> expectFieldError "hidden_act" "is 'gelu'"
        testCase "RoPE scaling (YaRN) is refused" <| fun () ->
            edited (fun o -> o["rope_scaling"] <- JsonNode.Parse """{"rope_type": "yarn", "factor": 4.0}""") |> expectFieldError "rope_scaling" "yarn"
        testCase "sliding-window attention is refused" <| fun () ->
            edited (fun o -> o["use_sliding_window"] <- JsonValue.Create true) |> expectFieldError "use_sliding_window" "is true"
        testCase "num_key_value_heads that does not divide num_attention_heads is refused" <| fun () ->
            edited (fun o -> o["num_key_value_heads"] <- JsonValue.Create 6) |> expectFieldError "num_key_value_heads" "does not divide"
        testCase "zero layers and an odd head_dim are refused" <| fun () ->
            edited (fun o -> o["num_hidden_layers"] <- JsonValue.Create 0) |> expectFieldError "num_hidden_layers" "must be ≥ 1"
            edited (fun o -> o["head_dim"] <- JsonValue.Create 127) |> expectFieldError "head_dim" "must be even"
        testCase "values of the wrong kind name the field: a string size, a fractional count, a number for a flag, an unknown dtype" <| fun () ->
            edited (fun o -> o["hidden_size"] <- JsonValue.Create "1024") |> expectFieldError "hidden_size" "must be an integer"
            edited (fun o -> o["num_hidden_layers"] <- JsonValue.Create 28.5) |> expectFieldError "num_hidden_layers" "must be an integer"
            edited (fun o -> o["tie_word_embeddings"] <- JsonValue.Create 1) |> expectFieldError "tie_word_embeddings" "must be true or false"
            edited (fun o -> o["torch_dtype"] <- JsonValue.Create "int8") |> expectFieldError "torch_dtype" "is 'int8'"
            edited (fun o -> o["vocab_size"] <- JsonValue.Create 1e12) |> expectFieldError "vocab_size" "must be an integer"
        testCase "a key given twice is refused" <| fun () ->
            qwen3_0_6B.Replace("\"vocab_size\": 151936", "\"vocab_size\": 151936, \"vocab_size\": 152064") |> expectFieldError "vocab_size" "appears twice"
        testCase "text that is not JSON is refused, naming the file" <| fun () ->
            expectCheckpointError "cfg.json" None "not valid JSON" (fun () -> Qwen3Config.Parse("{\"model_type\": ", "cfg.json") |> ignore)
        testCase "ToJson reads back equal (tied or not, each dtype, no/one/several EOS ids, attention bias)" <| fun () ->
            for c in [ Qwen3Config.Tiny()
                       Qwen3Config.Tiny(tieWordEmbeddings = true, torchDtype = torch.ScalarType.BFloat16, eosTokenIds = [| 5L |], bosTokenId = Nullable 4L)
                       Qwen3Config.Tiny(vocabSize = 256, torchDtype = torch.ScalarType.Float16, eosTokenIds = [| 1L; 2L |], attentionBias = true, ropeTheta = 12345.678, rmsNormEps = 1e-5)
                       Qwen3Config.Parse qwen3_0_6B ] do
                Expect.equal (Qwen3Config.Parse(c.ToJson())) c $"round trip of {c}"
        testCase "ToJson writes HF's field names, sorted, torch_dtype as a string, model_type and architectures" <| fun () ->
            let o = JsonNode.Parse(Qwen3Config.Tiny(torchDtype = torch.ScalarType.BFloat16).ToJson()).AsObject()
            let keys = [ for p in o -> p.Key ]
            Expect.equal keys (List.sort keys) "keys sorted"
            for key in required do Expect.contains keys key $"{key} written"
            Expect.equal (o["torch_dtype"].GetValue<string>()) "bfloat16" "torch_dtype"
            Expect.equal (o["model_type"].GetValue<string>()) "qwen3" "model_type"
            let architectures = o["architectures"].AsArray()
            Expect.equal (architectures[0].GetValue<string>()) "Qwen3ForCausalLM" "architectures"
        testCase "Save writes a config.json that Load reads back equal" <| fun () ->
            withTempDir (fun dir ->
                let c = Qwen3Config.Tiny(numHiddenLayers = 3)
                let path = Path.Combine(dir, "config.json")
                c.Save path
                Expect.equal (Qwen3Config.Load path) c "loaded")
        testCase "Tiny and Validate refuse inconsistent sizes with an ArgumentException naming the field" <| fun () ->
            let e = Expect.throwsC (fun () -> Qwen3Config.Tiny(numAttentionHeads = 4, numKeyValueHeads = 3) |> ignore) id
            Expect.isTrue (e :? ArgumentException) "ArgumentException"
            Expect.stringContains e.Message "num_key_value_heads" "names the field"
    ]
