module github.com/pie-project/libpie/bindings/go

go 1.19
