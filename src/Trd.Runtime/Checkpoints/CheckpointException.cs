namespace Trd.Runtime.Checkpoints;

/// <summary>
/// A checkpoint file (safetensors, its index, or config.json) that cannot be read as it is: broken, hostile, or
/// not what the caller expects. The message names the file and, where one is involved, the tensor or field, so
/// that a bad download or a wrong directory can be found without a debugger. Reading never leaves a partly
/// filled result behind: every check that can fail runs before the first tensor byte is read.
/// </summary>
public sealed class CheckpointException : Exception
{
    /// <summary>A failure in <paramref name="path"/>, about <paramref name="tensor"/> when not null.</summary>
    public CheckpointException(string path, string? tensor, string detail, Exception? inner = null)
        : base(Format(path, tensor, detail), inner)
    {
        Path = path;
        Tensor = tensor;
    }

    /// <summary>The file the failure is in (a safetensors file, an index, config.json or a directory).</summary>
    public string Path { get; }

    /// <summary>The tensor the failure is about; null when it concerns the file as a whole.</summary>
    public string? Tensor { get; }

    static string Format(string path, string? tensor, string detail) =>
        tensor is null ? $"{path}: {detail}" : $"{path}: tensor '{tensor}': {detail}";
}
