using System.Text.Json;

namespace Trd.Runtime.Tokenization;

/// <summary>What <see cref="TokenizerJson.Read"/> takes from a tokenizer.json.</summary>
/// <param name="Vocabulary">model.vocab: byte-level entry → id.</param>
/// <param name="Merges">model.merges, each as "left right", in rank order.</param>
/// <param name="AddedTokens">added_tokens.</param>
internal sealed record TokenizerJsonContent(
    Dictionary<string, int> Vocabulary, List<string> Merges, List<AddedToken> AddedTokens);

/// <summary>
/// Reads a Hugging Face tokenizer.json of the Qwen2/Qwen3 kind and checks that its pipeline is the one
/// <see cref="Qwen3Tokenizer"/> implements (NFC; the Qwen split pattern, isolated, then byte level; BPE without
/// dropout, byte fallback or affixes; byte-level decoder), so a different tokenizer is an error, not a silent
/// mis-tokenisation.
/// </summary>
internal static class TokenizerJson
{
    public static TokenizerJsonContent Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"tokenizer file not found: {path}", path);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, null, $"not valid JSON ({Trd.Runtime.Data.JsonErrors.Describe(e)})", e);
        }
        using (document)
        {
            var f = new Fields(path);
            var root = f.Object(document.RootElement, "(root)");
            CheckNormalizer(f, root);
            CheckPreTokenizer(f, root);
            CheckDecoder(f, root);
            var model = f.Object(f.Required(root, "model", ""), "model");
            f.ExpectString(model, "type", "model", "BPE");
            f.ExpectFalseOrAbsent(model, "ignore_merges", "model");
            f.ExpectFalseOrAbsent(model, "byte_fallback", "model");
            f.ExpectEmptyOrAbsent(model, "continuing_subword_prefix", "model");
            f.ExpectEmptyOrAbsent(model, "end_of_word_suffix", "model");
            if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind != JsonValueKind.Null)
                throw f.Error("model.dropout", "BPE dropout is not supported (expected null)");
            var vocabulary = ReadVocabulary(f, model);
            var merges = ReadMerges(f, model, vocabulary);
            var added = ReadAddedTokens(f, root);
            CheckIds(f, vocabulary, added);
            return new TokenizerJsonContent(vocabulary, merges, added);
        }
    }

    /// <summary>The largest id Trd accepts (ids index tables as long as the largest id): 2^24, far above Qwen3's 151,669.</summary>
    public const int MaxId = 1 << 24;

    static string Short(string raw) => raw.Length <= 80 ? raw : raw[..80] + "…";

    /// <summary>
    /// Every id means one token: an added token may repeat a vocabulary entry's id only with that entry's own text (as
    /// Qwen3's tokenizer.json does for none of them), and two added tokens never share an id.
    /// </summary>
    static void CheckIds(Fields f, Dictionary<string, int> vocabulary, List<AddedToken> added)
    {
        var byId = new Dictionary<int, string>();
        foreach (var (token, id) in vocabulary)
        {
            if (id >= MaxId) throw f.Error($"model.vocab[\"{Short(token)}\"]", $"= {id:N0} is more than {MaxId:N0}, the most Trd accepts");
            if (!byId.TryAdd(id, token)) throw f.Error($"model.vocab[\"{Short(token)}\"]", $"has id {id}, which model.vocab already gives to \"{Short(byId[id])}\"");
        }
        var addedById = new Dictionary<int, string>();
        for (var i = 0; i < added.Count; i++)
        {
            var (id, content) = (added[i].Id, added[i].Content);
            if (!addedById.TryAdd(id, content))
                throw f.Error($"added_tokens[{i}].id", $"= {id} is also the id of the added token \"{Short(addedById[id])}\"");
            if (byId.TryGetValue(id, out var entry) && entry != content)
                throw f.Error($"added_tokens[{i}].id", $"= {id} is the id of model.vocab entry \"{Short(entry)}\", not of \"{Short(content)}\"");
        }
    }

    static void CheckNormalizer(Fields f, JsonElement root)
    {
        var normalizer = f.Object(f.Required(root, "normalizer", ""), "normalizer");
        f.ExpectString(normalizer, "type", "normalizer", "NFC");
    }

    static void CheckPreTokenizer(Fields f, JsonElement root)
    {
        var pre = f.Object(f.Required(root, "pre_tokenizer", ""), "pre_tokenizer");
        f.ExpectString(pre, "type", "pre_tokenizer", "Sequence");
        var steps = f.Array(f.Required(pre, "pretokenizers", "pre_tokenizer"), "pre_tokenizer.pretokenizers");
        if (steps.GetArrayLength() != 2)
            throw f.Error("pre_tokenizer.pretokenizers", $"expected 2 steps (Split, ByteLevel), found {steps.GetArrayLength()}");
        const string split = "pre_tokenizer.pretokenizers[0]";
        var first = f.Object(steps[0], split);
        f.ExpectString(first, "type", split, "Split");
        var pattern = f.Object(f.Required(first, "pattern", split), split + ".pattern");
        f.ExpectString(pattern, "Regex", split + ".pattern", Qwen2PreTokenizer.Pattern);
        f.ExpectString(first, "behavior", split, "Isolated");
        f.ExpectFalseOrAbsent(first, "invert", split);
        const string byteLevel = "pre_tokenizer.pretokenizers[1]";
        var second = f.Object(steps[1], byteLevel);
        f.ExpectString(second, "type", byteLevel, "ByteLevel");
        f.ExpectFalseOrAbsent(second, "add_prefix_space", byteLevel);
        f.ExpectFalseOrAbsent(second, "use_regex", byteLevel);
    }

    static void CheckDecoder(Fields f, JsonElement root)
    {
        var decoder = f.Object(f.Required(root, "decoder", ""), "decoder");
        f.ExpectString(decoder, "type", "decoder", "ByteLevel");
    }

    static Dictionary<string, int> ReadVocabulary(Fields f, JsonElement model)
    {
        var vocab = f.Object(f.Required(model, "vocab", "model"), "model.vocab");
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
                throw f.Error($"model.vocab[\"{entry.Name}\"]", $"expected a non-negative integer id, found {entry.Value.GetRawText()}");
            result[entry.Name] = id;
        }
        if (result.Count == 0) throw f.Error("model.vocab", "is empty");
        return result;
    }

    static List<string> ReadMerges(Fields f, JsonElement model, Dictionary<string, int> vocabulary)
    {
        var merges = f.Array(f.Required(model, "merges", "model"), "model.merges");
        var result = new List<string>(merges.GetArrayLength());
        var index = 0;
        foreach (var merge in merges.EnumerateArray())
        {
            var field = $"model.merges[{index++}]";
            // Two spellings: "left right" (older files) or ["left", "right"] (tokenizers ≥ 0.20).
            string left, right;
            if (merge.ValueKind == JsonValueKind.String)
            {
                var parts = merge.GetString()!.Split(' ');
                if (parts.Length != 2) throw f.Error(field, $"expected \"left right\", found {merge.GetRawText()}");
                (left, right) = (parts[0], parts[1]);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                     && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                (left, right) = (merge[0].GetString()!, merge[1].GetString()!);
            }
            else throw f.Error(field, $"expected \"left right\" or [\"left\", \"right\"], found {merge.GetRawText()}");
            if (left.Length == 0 || right.Length == 0 || left.Contains(' ') || right.Contains(' '))
                throw f.Error(field, $"merge parts must be non-empty and without spaces, found {merge.GetRawText()}");
            if (!vocabulary.ContainsKey(left) || !vocabulary.ContainsKey(right) || !vocabulary.ContainsKey(left + right))
                throw f.Error(field, $"merge {merge.GetRawText()} uses or makes a token that is not in model.vocab");
            result.Add(left + " " + right);
        }
        return result;
    }

    static List<AddedToken> ReadAddedTokens(Fields f, JsonElement root)
    {
        var tokens = f.Array(f.Required(root, "added_tokens", ""), "added_tokens");
        var result = new List<AddedToken>();
        var index = 0;
        foreach (var token in tokens.EnumerateArray())
        {
            var field = $"added_tokens[{index++}]";
            f.Object(token, field);
            var idElement = f.Required(token, "id", field);
            if (idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt32(out var id) || id < 0)
                throw f.Error(field + ".id", $"expected a non-negative integer, found {Short(idElement.GetRawText())}");
            if (id >= MaxId)
                throw f.Error(field + ".id", $"= {id:N0} is more than {MaxId:N0}, the most Trd accepts (ids index a table as long as the largest id)");
            var content = f.String(f.Required(token, "content", field), field + ".content");
            if (content.Length == 0) throw f.Error(field + ".content", "is empty");
            foreach (var flag in new[] { "normalized", "lstrip", "rstrip", "single_word" })
                f.ExpectFalseOrAbsent(token, flag, field);
            var special = token.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
            result.Add(new AddedToken(id, content, special));
        }
        return result;
    }

    /// <summary>Typed access to JSON fields, failing with the file and the field's path.</summary>
    sealed class Fields(string path)
    {
        public TokenizerFileException Error(string field, string problem) => new(path, field, problem);

        static string Join(string parent, string name) => parent.Length == 0 ? name : parent + "." + name;

        public JsonElement Required(JsonElement obj, string name, string parent) =>
            obj.TryGetProperty(name, out var value) ? value : throw Error(Join(parent, name), "missing");

        public JsonElement Object(JsonElement element, string field) =>
            element.ValueKind == JsonValueKind.Object ? element : throw Error(field, $"expected an object, found {Describe(element)}");

        public JsonElement Array(JsonElement element, string field) =>
            element.ValueKind == JsonValueKind.Array ? element : throw Error(field, $"expected an array, found {Describe(element)}");

        public string String(JsonElement element, string field) =>
            element.ValueKind == JsonValueKind.String ? element.GetString()! : throw Error(field, $"expected a string, found {Describe(element)}");

        public void ExpectString(JsonElement obj, string name, string parent, string expected)
        {
            var field = Join(parent, name);
            var actual = String(Required(obj, name, parent), field);
            if (actual != expected)
                throw Error(field, $"expected \"{expected}\" (the Qwen2/Qwen3 tokenizer), found \"{actual}\"");
        }

        public void ExpectFalseOrAbsent(JsonElement obj, string name, string parent)
        {
            if (obj.TryGetProperty(name, out var value) && value.ValueKind is not (JsonValueKind.False or JsonValueKind.Null))
                throw Error(Join(parent, name), $"expected false, found {value.GetRawText()} (not supported)");
        }

        public void ExpectEmptyOrAbsent(JsonElement obj, string name, string parent)
        {
            if (obj.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
                && !(value.ValueKind == JsonValueKind.String && value.GetString()!.Length == 0))
                throw Error(Join(parent, name), $"expected \"\" or null, found {value.GetRawText()} (not supported)");
        }

        static string Describe(JsonElement element) => element.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        };
    }
}
