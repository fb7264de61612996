namespace Trd.Runtime.Tokenization;

/// <summary>
/// A tokenizer file that is not what the tokenizer needs: not JSON, a missing or mistyped field, or a pipeline
/// this tokenizer does not implement. The message names the file and the field.
/// </summary>
public sealed class TokenizerFileException : IOException
{
    /// <summary>The file read.</summary>
    public string FilePath { get; }

    /// <summary>The JSON path of the offending field (e.g. <c>model.merges[3]</c>), or null when the whole file is at fault.</summary>
    public string? Field { get; }

    /// <summary>An error in <paramref name="filePath"/> at <paramref name="field"/>.</summary>
    public TokenizerFileException(string filePath, string? field, string problem, Exception? inner = null)
        : base(field is null ? $"{filePath}: {problem}" : $"{filePath}: field '{field}': {problem}", inner)
    {
        FilePath = filePath;
        Field = field;
    }
}
