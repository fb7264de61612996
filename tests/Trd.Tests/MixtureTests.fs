module Trd.Tests.MixtureTests
