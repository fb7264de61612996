using System.Text.Json;

namespace Trd.Runtime.Tokenization;

/// <summary>
/// Which chat template a Hugging Face model directory carries, read where Hugging Face's tokenizer reads it:
/// <list type="number">
/// <item><c>chat_template.jinja</c> (written by transformers ≥ 4.43), which wins when present, as it does in
/// transformers, whatever tokenizer_config.json says;</item>
/// <item>otherwise tokenizer_config.json's <c>chat_template</c>: a string, or a list of <c>{"name", "template"}</c>
/// objects of which the one named <c>default</c> is used (as <c>apply_chat_template</c> does without a
/// <c>chat_template</c> argument);</item>
/// <item>otherwise — no such file or key, or <c>null</c>: a directory Trd wrote (a random or gym model, whose
/// tokenizer.json alone is written) or one whose config predates chat templates — Qwen3's original template
/// (<see cref="ChatTemplateKind.Qwen3"/>), Trd's chat format before it read templates at all.</item>
/// </list>
/// A template Trd does not know (<see cref="KnownChatTemplates"/>) is refused with a <see cref="TokenizerFileException"/>
/// naming the file by its full path and listing the known ones: Trd renders templates in code, and prompting a model
/// in another format would go unnoticed.
/// </summary>
public static class ChatTemplateFile
{
    /// <summary>The template file transformers writes beside tokenizer_config.json.</summary>
    public const string JinjaFileName = "chat_template.jinja";

    /// <summary>The tokenizer's configuration, whose <c>chat_template</c> key holds the template otherwise.</summary>
    public const string ConfigFileName = "tokenizer_config.json";

    /// <summary>The template of <paramref name="modelDirectory"/> (see the type's summary for where it is read).</summary>
    public static ChatTemplateKind Read(string modelDirectory) =>
        ReadText(modelDirectory) is { } found ? Recognise(found.Text, found.Path, found.Field) : ChatTemplateKind.Qwen3;

    /// <summary>
    /// The template text the directory carries, the file it came from (full path) and the field inside it (null for
    /// chat_template.jinja), read where <see cref="Read"/> reads it but not recognised; null when there is none.
    /// </summary>
    public static (string Text, string Path, string? Field)? ReadText(string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        var jinja = Path.GetFullPath(Path.Combine(modelDirectory, JinjaFileName));
        if (File.Exists(jinja)) return (File.ReadAllText(jinja), jinja, null);
        var config = Path.GetFullPath(Path.Combine(modelDirectory, ConfigFileName));
        return File.Exists(config) ? FromConfig(config) : null;
    }

    /// <summary>tokenizer_config.json's template, or null when it has none.</summary>
    static (string Text, string Path, string? Field)? FromConfig(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, null, $"not valid JSON ({Data.JsonErrors.Describe(e)})", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new TokenizerFileException(path, null, "expected a JSON object");
            if (!document.RootElement.TryGetProperty("chat_template", out var template)) return null;
            return template.ValueKind switch
            {
                JsonValueKind.Null => null,
                JsonValueKind.String => (template.GetString()!, path, "chat_template"),
                JsonValueKind.Array => (Default(template, path), path, "chat_template[name=default]"),
                _ => throw new TokenizerFileException(path, "chat_template", "expected a string or a list of {\"name\", \"template\"} objects"),
            };
        }
    }

    /// <summary>The template named "default" of a list of named templates.</summary>
    static string Default(JsonElement list, string path)
    {
        var names = new List<string>();
        foreach (var entry in list.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object
                || !entry.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                || !entry.TryGetProperty("template", out var text) || text.ValueKind != JsonValueKind.String)
                throw new TokenizerFileException(path, "chat_template", "expected a string or a list of {\"name\", \"template\"} objects");
            if (name.GetString() == "default") return text.GetString()!;
            names.Add(name.GetString()!);
        }
        throw new TokenizerFileException(path, "chat_template",
            $"a list of named templates ({string.Join(", ", names)}) with none named 'default', which is the one Hugging Face and Trd use");
    }

    /// <summary>The kind of a template text read from <paramref name="path"/>; a TokenizerFileException naming it when Trd does not know it.</summary>
    internal static ChatTemplateKind Recognise(string text, string path, string? field) =>
        KnownChatTemplates.Recognise(text)
        ?? throw new TokenizerFileException(path, field,
            $"not a chat template Trd knows. Trd renders Qwen3's templates in code and refuses others (until it has a Jinja "
            + $"renderer it trusts) rather than prompt the model in a format the template does not describe; it knows {KnownChatTemplates.Describe()}, "
            + "up to indentation and line endings (docs/design.md, 'Chat templates')");
}
