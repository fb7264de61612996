using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// A byte-level BPE vocabulary of a few hundred entries, written as a Hugging Face tokenizer.json of the Qwen3 kind,
/// so that tiny random Qwen3-architecture models (tests, <c>configs/tiny.json</c>, synthetic tasks) run through the
/// same <see cref="Qwen3Tokenizer"/> and <see cref="ChatTemplate"/> as the real model. The file has, in id order:
/// <list type="number">
/// <item>the 256 byte tokens, byte <c>b</c> at id <c>b</c> (so the digit <c>7</c> is id 55);</item>
/// <item>one entry per merge, the merges building each word of <see cref="DefaultWords"/> plus the caller's words
/// into a single token;</item>
/// <item>Qwen3's 26 added tokens with Qwen3's strings and <c>special</c> flags (<c>&lt;|endoftext|&gt;</c> first,
/// then <c>&lt;|im_start|&gt;</c>, <c>&lt;|im_end|&gt;</c>, …, <c>&lt;think&gt;</c>, <c>&lt;/think&gt;</c> last).</item>
/// </list>
/// The pipeline (NFC, Qwen's split pattern, byte level, BPE, byte-level decoder) is Qwen3's, so any text encodes and
/// decodes back to its NFC form, only in more tokens. With the default words the vocabulary has 404 ids (256 bytes,
/// 122 merges, 26 added tokens; <c>&lt;|endoftext|&gt;</c> is 378, <c>&lt;|im_end|&gt;</c> 380).
/// </summary>
public static class SmallTokenizer
{
    /// <summary>
    /// The paper's 16 epistemic phrases (App. C.5, the set ℰ of the epistemic-token mass): Wait, Actually,
    /// However, Alternatively, Oops, Wrong, Error, Incorrect, Correction, Sorry, Hmm, Oh, Hold, Pause, Uh, Um.
    /// </summary>
    public static IReadOnlyList<string> EpistemicPhrases { get; } =
    [
        "Wait", "Actually", "However", "Alternatively", "Oops", "Wrong", "Error", "Incorrect",
        "Correction", "Sorry", "Hmm", "Oh", "Hold", "Pause", "Uh", "Um",
    ];

    /// <summary>
    /// The words every small vocabulary makes single tokens: each epistemic phrase bare and with a leading space
    /// (App. C.5 tokenises both variants), and a few pieces of worked-answer text (<c>\boxed</c>, <c> =</c>,
    /// <c>Answer</c>, a blank line, …). Digits and punctuation are single bytes already. Qwen's split cuts
    /// <c>" \boxed"</c> into <c>" \"</c> and <c>"boxed"</c> (a space joins the punctuation after it, not a letter
    /// run behind that), so those two are words too.
    /// </summary>
    public static IReadOnlyList<string> DefaultWords { get; } =
    [
        .. EpistemicPhrases,
        .. EpistemicPhrases.Select(p => " " + p),
        "\\boxed", " \\", "boxed", "\\frac", " =", "Answer", " answer", "Let", " the", " is", "So", " So", "\n\n",
    ];

    /// <summary>Qwen3's added tokens, in Qwen3's order, with whether tokenizer.json marks each special.</summary>
    static readonly (string Content, bool Special)[] _addedTokens =
    [
        ("<|endoftext|>", true), ("<|im_start|>", true), ("<|im_end|>", true),
        ("<|object_ref_start|>", true), ("<|object_ref_end|>", true), ("<|box_start|>", true), ("<|box_end|>", true),
        ("<|quad_start|>", true), ("<|quad_end|>", true), ("<|vision_start|>", true), ("<|vision_end|>", true),
        ("<|vision_pad|>", true), ("<|image_pad|>", true), ("<|video_pad|>", true),
        ("<tool_call>", false), ("</tool_call>", false),
        ("<|fim_prefix|>", false), ("<|fim_middle|>", false), ("<|fim_suffix|>", false), ("<|fim_pad|>", false),
        ("<|repo_name|>", false), ("<|file_sep|>", false),
        ("<tool_response>", false), ("</tool_response>", false),
        ("<think>", false), ("</think>", false),
    ];

    /// <summary>
    /// Writes <c>tokenizer.json</c> into <paramref name="directory"/> (created if missing), for
    /// <see cref="Qwen3Tokenizer.FromDirectory"/>. No tokenizer_config.json is written, so the directory declares no chat
    /// template and gets Qwen3's original (<see cref="ChatTemplateFile"/>). The same words give the same file.
    /// </summary>
    /// <param name="directory">The model directory.</param>
    /// <param name="extraWords">Words to make single tokens on top of <see cref="DefaultWords"/>. Each must be one
    /// piece of Qwen's split pattern (so <c>" Wait"</c> and <c>"Wait"</c>, not <c>"Wait,"</c>), in NFC, and hold no
    /// added token; otherwise an <see cref="ArgumentException"/> names it.</param>
    public static void Write(string directory, IEnumerable<string>? extraWords = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var json = ToJson(extraWords);
        Directory.CreateDirectory(directory);
        Checkpoints.AtomicFile.Write(Path.Combine(directory, "tokenizer.json"), stream => stream.Write(json));
    }

    /// <summary>
    /// A small tokenizer ready to use: <see cref="Write"/> into a temporary directory, loaded with
    /// <see cref="Qwen3Tokenizer.FromDirectory"/>, the directory deleted.
    /// </summary>
    /// <param name="extraWords">As for <see cref="Write"/>.</param>
    public static Qwen3Tokenizer Create(IEnumerable<string>? extraWords = null)
    {
        var directory = Directory.CreateTempSubdirectory("trd-small-tokenizer-");
        try
        {
            Write(directory.FullName, extraWords);
            return Qwen3Tokenizer.FromDirectory(directory.FullName);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The tokenizer.json <see cref="Write"/> writes, as UTF-8 bytes.</summary>
    /// <param name="extraWords">As for <see cref="Write"/>.</param>
    public static byte[] ToJson(IEnumerable<string>? extraWords = null)
    {
        var words = DefaultWords.Concat(extraWords ?? []).Distinct(StringComparer.Ordinal).ToList();
        foreach (var word in words) Validate(word);
        var (vocabulary, merges) = BuildMerges(words);
        return Serialize(vocabulary, merges);
    }

    static void Validate(string word)
    {
        if (word is null) throw new ArgumentException("a word is null", "extraWords");
        if (word.Length == 0) throw new ArgumentException("a word is empty", "extraWords");
        if (!word.IsNormalized(NormalizationForm.FormC))
            throw new ArgumentException($"word \"{word}\" is not in NFC, so no normalised text holds it", "extraWords");
        if (_addedTokens.Any(t => word.Contains(t.Content, StringComparison.Ordinal)))
            throw new ArgumentException($"word \"{word}\" holds an added token", "extraWords");
        if (Qwen2PreTokenizer.Split(word.AsSpan()).Count != 1)
            throw new ArgumentException(
                $"word \"{word}\" is more than one piece of Qwen's split pattern, so no merge can join it", "extraWords");
    }

    /// <summary>
    /// Merges that make each word one token, found by running BPE itself: for each word, encode it with the merges
    /// so far and, if it is still several tokens, append merges joining them left to right. A later merge can cut
    /// an earlier word differently (or a word's own chain can, as in "abab"), so passes repeat until every word is
    /// one token; the merges only ever grow, and a pass that adds nothing ends it.
    /// </summary>
    static (Dictionary<string, int> Vocabulary, List<(string Left, string Right)> Merges) BuildMerges(List<string> words)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var b = 0; b < 256; b++) vocabulary[ByteLevelAlphabet.ToChar((byte)b).ToString()] = b;
        var merges = new List<(string Left, string Right)>();
        var known = new HashSet<(string, string)>();
        const int maxPasses = 16;
        for (var pass = 0; pass < maxPasses; pass++)
        {
            var added = false;
            var bpe = Bpe(vocabulary, merges);
            foreach (var word in words)
            {
                var pieces = bpe.EncodeToTokens(word, out _).Select(t => t.Value).ToList();
                if (pieces.Count == 1) continue;
                var left = pieces[0];
                foreach (var right in pieces.Skip(1))
                {
                    if (known.Add((left, right))) merges.Add((left, right));
                    vocabulary.TryAdd(left + right, vocabulary.Count);
                    left += right;
                }
                added = true;
                bpe = Bpe(vocabulary, merges);
            }
            if (!added) return (vocabulary, merges);
        }
        throw new InvalidOperationException($"merges for the words did not settle after {maxPasses} passes");
    }

    static BpeTokenizer Bpe(Dictionary<string, int> vocabulary, List<(string Left, string Right)> merges) =>
        BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = merges.Select(m => m.Left + " " + m.Right),
            ByteLevel = true,
            PreTokenizer = Qwen2PreTokenizer.Instance,
            Normalizer = NfcNormalizer.Instance,
        });

    static byte[] Serialize(Dictionary<string, int> vocabulary, List<(string Left, string Right)> merges)
    {
        using var buffer = new MemoryStream();
        // Relaxed escaping keeps the byte-level characters (Ġ, Ċ, …) readable; the file is data, never HTML.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            var id = vocabulary.Count;
            foreach (var (content, special) in _addedTokens)
            {
                w.WriteStartObject();
                w.WriteNumber("id", id++);
                w.WriteString("content", content);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", special);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("normalizer");
            w.WriteString("type", "NFC");
            w.WriteEndObject();
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            w.WriteStartObject();
            w.WriteString("type", "Split");
            w.WriteStartObject("pattern");
            w.WriteString("Regex", Qwen2PreTokenizer.Pattern);
            w.WriteEndObject();
            w.WriteString("behavior", "Isolated");
            w.WriteBoolean("invert", false);
            w.WriteEndObject();
            WriteByteLevel(w, null);
            w.WriteEndArray();
            w.WriteEndObject();
            WriteByteLevel(w, "post_processor");
            WriteByteLevel(w, "decoder");
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteString("continuing_subword_prefix", "");
            w.WriteString("end_of_word_suffix", "");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            foreach (var (token, tokenId) in vocabulary.OrderBy(e => e.Value)) w.WriteNumber(token, tokenId);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (left, right) in merges) w.WriteStringValue(left + " " + right);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    static void WriteByteLevel(Utf8JsonWriter w, string? name)
    {
        if (name is null) w.WriteStartObject();
        else w.WriteStartObject(name);
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", false);
        w.WriteBoolean("use_regex", false);
        w.WriteEndObject();
    }
}
