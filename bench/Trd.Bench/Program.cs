using TorchSharp;
using static TorchSharp.torch;
var x = randn(3, 3, requires_grad: true);
(x * x).sum().backward();
x.grad = null;
Console.WriteLine(Trd.Runtime.Devices.Describe(Trd.Runtime.Devices.Default));
Console.WriteLine(Trd.Core.Recipes.Trd);
