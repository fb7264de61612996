using static TorchSharp.torch;

namespace Trd.Runtime.Checkpoints;

/// <summary>
/// Named tensors on disk: one safetensors file (<see cref="SafeTensorsFile"/>) or a sharded set behind a
/// <c>model.safetensors.index.json</c> (<see cref="ShardedSafeTensors"/>). Opening validates every header;
/// tensor bytes are read only when a tensor is loaded. A load of several tensors is all or nothing: on failure
/// the tensors already made are disposed and a <see cref="CheckpointException"/> names the file and tensor.
/// </summary>
public interface ITensorCheckpoint
{
    /// <summary>The safetensors file, or the index of a sharded checkpoint.</summary>
    string Path { get; }

    /// <summary>Every tensor name, in ordinal order.</summary>
    IReadOnlyList<string> Names { get; }

    /// <summary>Whether a tensor of that name is stored.</summary>
    bool Contains(string name);

    /// <summary>The stored dtype, shape and byte range of a tensor; a CheckpointException when there is none.</summary>
    SafeTensorsEntry Entry(string name);

    /// <summary>
    /// Loads one tensor in its stored dtype on the CPU, or converted to <paramref name="dtype"/> and moved to
    /// <paramref name="device"/> when given. The caller disposes it.
    /// </summary>
    Tensor Load(string name, Device? device = null, ScalarType? dtype = null);

    /// <summary>Loads the named tensors, as <see cref="Load(string, Device?, ScalarType?)"/> does one, all or nothing.</summary>
    Dictionary<string, Tensor> Load(IEnumerable<string> names, Device? device = null, ScalarType? dtype = null);

    /// <summary>Loads every stored tensor, all or nothing.</summary>
    Dictionary<string, Tensor> LoadAll(Device? device = null, ScalarType? dtype = null);

    /// <summary>
    /// Copies the stored tensors into existing tensors of the same names and shapes (a model's parameters),
    /// converting dtype and device as needed; a contiguous CPU destination of the stored dtype is read into
    /// directly. Names and shapes are all checked before any byte is copied; tensors not named are not read.
    /// </summary>
    void LoadInto(IReadOnlyDictionary<string, Tensor> destinations);
}
