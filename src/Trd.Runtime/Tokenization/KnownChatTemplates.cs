using System.Text;

namespace Trd.Runtime.Tokenization;

/// <summary>One chat template text Trd recognises: the kind it renders as, and which published revision it is.</summary>
/// <param name="Kind">How <see cref="ChatTemplate"/> renders it.</param>
/// <param name="Revision">The file it ships as (Tokenization/ChatTemplates/, sources in the README there).</param>
/// <param name="Text">The Jinja text, exactly as published.</param>
public sealed record KnownChatTemplate(ChatTemplateKind Kind, string Revision, string Text);

/// <summary>
/// The published Qwen3 chat templates Trd renders in code, and their recognition. A template is recognised when it is
/// one of them up to whitespace that cannot change what Jinja renders (<see cref="Canonical"/>); anything else — another
/// family's template, or a Qwen3 template with one line added or changed — is not, because Trd has no Jinja renderer
/// and would otherwise prompt the model in a format its template does not describe.
/// </summary>
/// <remarks>
/// Whole-text comparison rather than a few features: a template that keeps the features (the generation prompt, the
/// think-block handling) but adds a line renders differently, and matching on features would render it wrongly without
/// an error — the failure this check exists to prevent. The kinds differ in these lines, which are what
/// <see cref="ChatTemplate"/> implements: the generation prompt (<c>'&lt;|im_start|&gt;assistant\n'</c> with the
/// <c>enable_thinking is false</c> empty think block; the same without it; <c>'&lt;|im_start|&gt;assistant\n&lt;think&gt;\n'</c>)
/// and the assistant branch (the <c>reasoning_content</c> split at <c>&lt;/think&gt;</c> and <c>ns.last_query_index</c>,
/// or content alone).
/// </remarks>
public static class KnownChatTemplates
{
    /// <summary>Every recognised text: Qwen3 in its release and revised forms, Qwen3-2507 Instruct and Thinking.</summary>
    public static IReadOnlyList<KnownChatTemplate> All { get; } =
    [
        Load(ChatTemplateKind.Qwen3, "qwen3.jinja"),
        Load(ChatTemplateKind.Qwen3, "qwen3-revised.jinja"),
        Load(ChatTemplateKind.Qwen3Instruct2507, "qwen3-instruct-2507.jinja"),
        Load(ChatTemplateKind.Qwen3Thinking2507, "qwen3-thinking-2507.jinja"),
    ];

    static readonly Dictionary<string, ChatTemplateKind> ByCanonical =
        All.ToDictionary(t => Canonical(t.Text)!, t => t.Kind, StringComparer.Ordinal);

    /// <summary>The kind of a template text, or null when it is none Trd knows.</summary>
    public static ChatTemplateKind? Recognise(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Canonical(text) is { } canonical && ByCanonical.TryGetValue(canonical, out var kind) ? kind : null;
    }

    /// <summary>The recognised revisions, for error messages: "qwen3.jinja (Qwen3), …".</summary>
    public static string Describe() => string.Join(", ", All.Select(t => $"{t.Revision} ({t.Kind})"));

    /// <summary>
    /// The text with the whitespace Jinja cannot render removed: line endings made <c>\n</c> (Python reads
    /// chat_template.jinja in text mode, which does the same), each line's leading and trailing blanks and every empty
    /// line dropped. That is only render-neutral when every line opens with a tag that trims the whitespace before it
    /// (<c>{%-</c>, <c>{{-</c>), so a text with any other line gets no canonical form (null) — every line of the
    /// published templates opens so. At the end, Hugging Face's Jinja (<c>trim_blocks</c>, no
    /// <c>keep_trailing_newline</c>) drops up to two newlines after the last tag; more, or a blank before them, would be
    /// rendered, so such a text gets none either.
    /// </summary>
    public static string? Canonical(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var normalised = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        var body = normalised.TrimEnd('\n');
        if (normalised.Length - body.Length > 2 || body.EndsWith(' ') || body.EndsWith('\t')) return null;
        var lines = new List<string>();
        foreach (var line in body.Split('\n'))
        {
            var trimmed = line.Trim(' ', '\t');
            if (trimmed.Length == 0) continue;
            if (!trimmed.StartsWith("{%-", StringComparison.Ordinal) && !trimmed.StartsWith("{{-", StringComparison.Ordinal)) return null;
            lines.Add(trimmed);
        }
        return string.Join('\n', lines);
    }

    static KnownChatTemplate Load(ChatTemplateKind kind, string file)
    {
        var assembly = typeof(KnownChatTemplates).Assembly;
        using var stream = assembly.GetManifestResourceStream("chat-templates/" + file)
            ?? throw new InvalidOperationException($"Trd.Runtime is missing its embedded chat template {file}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return new KnownChatTemplate(kind, file, reader.ReadToEnd());
    }
}
