using System.Text;
using Microsoft.ML.Tokenizers;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// Qwen3's tokenizer (also Qwen2/2.5's) from a Hugging Face tokenizer.json: added tokens cut out of the raw text,
/// then for each stretch between them NFC (<see cref="NfcNormalizer"/>), the Qwen split pattern
/// (<see cref="Qwen2PreTokenizer"/>) and byte-level BPE (Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>);
/// decoding maps the byte-level alphabet back to UTF-8 as Hugging Face's <c>ByteLevel</c> decoder does.
/// Ids match Hugging Face's <c>tokenizers</c> (<c>encode(text, add_special_tokens=False)</c>; Qwen adds nothing
/// either way).
/// </summary>
public sealed class Qwen3Tokenizer : ITokenizer
{
    readonly BpeTokenizer _bpe;
    readonly AddedTokenSplitter _splitter;
    readonly Dictionary<string, int> _idByToken;
    readonly string?[] _tokenById;
    readonly bool[] _isSpecial;

    Qwen3Tokenizer(BpeTokenizer bpe, TokenizerJsonContent content, string path, ChatTemplateKind chatTemplate)
    {
        _bpe = bpe;
        ChatTemplate = chatTemplate;
        _splitter = new AddedTokenSplitter(content.AddedTokens);
        _idByToken = new Dictionary<string, int>(content.Vocabulary, StringComparer.Ordinal);
        foreach (var token in content.AddedTokens) _idByToken[token.Content] = token.Id;
        VocabularySize = _idByToken.Values.Max() + 1;
        _tokenById = new string?[VocabularySize];
        foreach (var (token, id) in content.Vocabulary) _tokenById[id] = token;
        _isSpecial = new bool[VocabularySize];
        foreach (var token in content.AddedTokens)
        {
            _tokenById[token.Id] = token.Content;
            _isSpecial[token.Id] = token.Special;
        }
        AddedTokens = content.AddedTokens;
        EndOfTurnId = RequiredAddedToken(content, path, "<|im_end|>");
        EndOfTextId = RequiredAddedToken(content, path, "<|endoftext|>");
        StopIds = [EndOfTurnId, EndOfTextId];
    }

    /// <summary>Reads a tokenizer.json (Qwen2/2.5/3). A missing file is a <see cref="FileNotFoundException"/>;
    /// a malformed one, or one with another pipeline, a <see cref="TokenizerFileException"/> naming the field.</summary>
    /// <param name="tokenizerJsonPath">The tokenizer.json.</param>
    /// <param name="chatTemplate">The chat template of its model: a file alone declares none, so Qwen3's original unless
    /// given (<see cref="FromDirectory"/> reads the directory's).</param>
    public static Qwen3Tokenizer FromFile(string tokenizerJsonPath, ChatTemplateKind chatTemplate = ChatTemplateKind.Qwen3)
    {
        var content = TokenizerJson.Read(tokenizerJsonPath);
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(content.Vocabulary)
            {
                Merges = content.Merges,
                ByteLevel = true,
                PreTokenizer = Qwen2PreTokenizer.Instance,
                Normalizer = NfcNormalizer.Instance,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new TokenizerFileException(tokenizerJsonPath, "model", $"the BPE model could not be built ({e.Message})", e);
        }
        return new Qwen3Tokenizer(bpe, content, tokenizerJsonPath, chatTemplate);
    }

    /// <summary>
    /// Reads <c>tokenizer.json</c> from a model directory (as Hugging Face lays one out), and its chat template
    /// (<see cref="ChatTemplateFile.Read"/>: chat_template.jinja or tokenizer_config.json; one Trd does not know is a
    /// <see cref="TokenizerFileException"/> naming the file).
    /// </summary>
    public static Qwen3Tokenizer FromDirectory(string modelDirectory)
    {
        var tokenizerJson = Path.Combine(modelDirectory, "tokenizer.json");
        // tokenizer.json first: a directory without one is a FileNotFoundException whatever its template.
        if (!File.Exists(tokenizerJson)) return FromFile(tokenizerJson);
        return FromFile(tokenizerJson, ChatTemplateFile.Read(modelDirectory));
    }

    /// <inheritdoc/>
    public int VocabularySize { get; }

    /// <summary>The added tokens (Qwen3: 26, ids 151,643–151,668), in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <inheritdoc/>
    public int EndOfTurnId { get; }

    /// <inheritdoc/>
    public int EndOfTextId { get; }

    /// <inheritdoc/>
    public IReadOnlyList<int> StopIds { get; }

    /// <inheritdoc/>
    public ChatTemplateKind ChatTemplate { get; }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        _splitter.Split(
            text,
            onText: stretch => ids.AddRange(_bpe.EncodeToIds(stretch, considerPreTokenization: true, considerNormalization: true)),
            onToken: token => ids.Add(token.Id));
        return ids.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>(ids.Count * 4);
        for (var i = 0; i < ids.Count; i++)
        {
            var token = TokenAt(ids[i], $"ids[{i}]");
            if (skipSpecialTokens && _isSpecial[ids[i]]) continue;
            // Hugging Face's ByteLevel decoder: an entry outside the byte alphabet is taken as its own UTF-8.
            if (!ByteLevelAlphabet.TryAppendBytes(token, bytes)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }
        return ByteLevelAlphabet.DecodeUtf8(bytes);
    }

    /// <inheritdoc/>
    public string IdToToken(int id) => TokenAt(id, nameof(id));

    /// <inheritdoc/>
    public bool TryGetId(string token, out int id) => _idByToken.TryGetValue(token, out id);

    string TokenAt(int id, string argument) =>
        id >= 0 && id < VocabularySize && _tokenById[id] is { } token
            ? token
            : throw new ArgumentOutOfRangeException(argument, id, $"token id {id} is not in the vocabulary (ids 0..{VocabularySize - 1})");

    static int RequiredAddedToken(TokenizerJsonContent content, string path, string text) =>
        content.AddedTokens.FirstOrDefault(t => t.Content == text)?.Id
        ?? throw new TokenizerFileException(path, "added_tokens", $"no added token {text}, which generation needs");
}
