module Trd.Tests.NumericsTests
