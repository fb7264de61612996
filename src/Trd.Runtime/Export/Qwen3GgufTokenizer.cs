using System.Text.Json;
using System.Text.Json.Nodes;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Tokenization;

namespace Trd.Runtime.Export;

/// <summary>llama.cpp's token types (llama.h, <c>enum llama_token_type</c>), as tokenizer.ggml.token_type stores them.</summary>
public enum GgufTokenType
{
    /// <summary>A vocabulary entry.</summary>
    Normal = 1,
    /// <summary>The unknown token (byte-level BPE has none).</summary>
    Unknown = 2,
    /// <summary>A special token (&lt;|im_start|&gt;, &lt;|endoftext|&gt;): matched in text only when special tokens are parsed, not printed.</summary>
    Control = 3,
    /// <summary>An added token that is not special (&lt;think&gt;): always matched as a whole.</summary>
    UserDefined = 4,
    /// <summary>An id past the tokenizer, present only to pad the embedding ("[PAD{id}]").</summary>
    Unused = 5,
    /// <summary>A byte token (SentencePiece byte fallback; not in byte-level BPE).</summary>
    Byte = 6,
}

/// <summary>
/// A Qwen3 tokenizer as GGUF's tokenizer keys hold it, built as llama.cpp's converter builds it
/// (convert_hf_to_gguf.py, <c>get_vocab_base</c> and <c>SpecialVocab</c>): model "gpt2" (byte-level BPE) with the
/// "qwen2" pre-tokenizer; one token per id up to the config's vocab_size, ids the tokenizer does not use written
/// as "[PAD{id}]" of type Unused; an added token Control when it is special or looks special (&lt;|…|&gt;),
/// else UserDefined (&lt;think&gt;, &lt;tool_call&gt;, …); the merges in rank order; the special-token ids from
/// tokenizer_config.json, else config.json.
/// </summary>
public sealed record Qwen3GgufTokenizer(string[] Tokens, int[] TokenTypes, string[] Merges, int? BosId, int? EosId, int? PadId, bool AddBos)
{
    /// <summary>Reads the directory's tokenizer.json (and tokenizer_config.json when present) for a model of <paramref name="config"/>.</summary>
    public static Qwen3GgufTokenizer Read(string directory, Qwen3Config config)
    {
        var tokenizerPath = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(tokenizerPath))
            throw new TokenizerFileException(tokenizerPath, null, "there is no tokenizer.json; a GGUF file carries its tokenizer, so it is needed (a training checkpoint's model directory has none: pass --tokenizer with the base model's directory)");
        var content = TokenizerJson.Read(tokenizerPath);
        var tokens = new string?[config.VocabSize];
        var types = new int[config.VocabSize];
        void Place(int id, string text, GgufTokenType type)
        {
            if (id >= config.VocabSize)
                throw new TokenizerFileException(tokenizerPath, null, $"token id {id:N0} ('{text}') is past the model's vocab_size {config.VocabSize:N0}");
            tokens[id] = text;
            types[id] = (int)type;
        }
        foreach (var (text, id) in content.Vocabulary) Place(id, text, GgufTokenType.Normal);
        foreach (var added in content.AddedTokens)
            Place(added.Id, added.Content, added.Special || LooksSpecial(added.Content) ? GgufTokenType.Control : GgufTokenType.UserDefined);
        for (var id = 0; id < tokens.Length; id++)
            if (tokens[id] is null) { tokens[id] = $"[PAD{id}]"; types[id] = (int)GgufTokenType.Unused; }

        var special = SpecialTokens.Read(Path.Combine(directory, "tokenizer_config.json"));
        int? IdOf(string? text, string key)
        {
            if (text is null) return null;
            for (var id = 0; id < tokens.Length; id++)
                if (types[id] != (int)GgufTokenType.Unused && tokens[id] == text) return id;
            throw new TokenizerFileException(Path.Combine(directory, "tokenizer_config.json"), key, $"names '{text}', which is not a token of tokenizer.json");
        }
        int? FromConfig(long? id) => id is { } v && v >= 0 && v < config.VocabSize ? (int)v : null;
        var bos = IdOf(special.Bos, "bos_token") ?? FromConfig(config.BosTokenId);
        var eos = IdOf(special.Eos, "eos_token") ?? FromConfig(config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null);
        var pad = IdOf(special.Pad, "pad_token");
        return new Qwen3GgufTokenizer(tokens!, types, content.Merges.ToArray(), bos, eos, pad, special.AddBos ?? false);
    }

    /// <summary>llama.cpp's converter's <c>does_token_look_special</c>, for the forms a Qwen tokenizer has.</summary>
    static bool LooksSpecial(string token) =>
        (token.StartsWith("<|", StringComparison.Ordinal) && token.EndsWith("|>", StringComparison.Ordinal))
        || (token.StartsWith("<｜", StringComparison.Ordinal) && token.EndsWith("｜>", StringComparison.Ordinal));

    /// <summary>The GGUF metadata pairs.</summary>
    public IEnumerable<KeyValuePair<string, GgufValue>> Metadata()
    {
        yield return new("tokenizer.ggml.model", GgufValue.String("gpt2"));
        yield return new("tokenizer.ggml.pre", GgufValue.String("qwen2"));
        yield return new("tokenizer.ggml.tokens", GgufValue.Strings(Tokens));
        yield return new("tokenizer.ggml.token_type", GgufValue.Int32s(TokenTypes));
        yield return new("tokenizer.ggml.merges", GgufValue.Strings(Merges));
        if (EosId is { } eos) yield return new("tokenizer.ggml.eos_token_id", GgufValue.UInt32((uint)eos));
        if (PadId is { } pad) yield return new("tokenizer.ggml.padding_token_id", GgufValue.UInt32((uint)pad));
        if (BosId is { } bos) yield return new("tokenizer.ggml.bos_token_id", GgufValue.UInt32((uint)bos));
        yield return new("tokenizer.ggml.add_bos_token", GgufValue.Bool(AddBos));
    }

    /// <summary>The special tokens tokenizer_config.json names (a string or an object with "content").</summary>
    sealed record SpecialTokens(string? Bos, string? Eos, string? Pad, bool? AddBos)
    {
        public static SpecialTokens Read(string path)
        {
            if (!File.Exists(path)) return new(null, null, null, null);
            JsonNode? root;
            try { root = JsonNode.Parse(File.ReadAllText(path)); }
            catch (JsonException e) { throw new TokenizerFileException(path, null, $"not valid JSON ({Data.JsonErrors.Describe(e)})", e); }
            if (root is not JsonObject o) throw new TokenizerFileException(path, null, "is not a JSON object");
            string? Token(string key) => o[key] switch
            {
                null => null,
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonObject t when t["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String => c.GetValue<string>(),
                var other => throw new TokenizerFileException(path, key, $"expected a token string or an object with \"content\", found {other.ToJsonString()}"),
            };
            bool? Flag(string key) => o[key] switch
            {
                null => null,
                JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
                var other => throw new TokenizerFileException(path, key, $"expected true or false, found {other.ToJsonString()}"),
            };
            return new(Token("bos_token"), Token("eos_token"), Token("pad_token"), Flag("add_bos_token"));
        }
    }
}
