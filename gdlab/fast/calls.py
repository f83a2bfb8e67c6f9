"""Calling compiled C functions through their addresses from numba code.

The executors call the code generated for a rule or a landscape through the address of its
``cfunc``: one compilation of a driver then serves every rule and landscape, and LLVM never
re-optimises the callees inside it. :func:`caller` makes the intrinsic for a return type: arrays
are passed as their data pointers, integers as they are.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def caller(restype: Any) -> Any:
    """An intrinsic ``call(address, *args)`` returning ``restype`` (``types.void`` or an integer)."""

    @intrinsic
    def call(typingctx, address, *args):  # no annotations: numba reads the signature
        args = args[0] if len(args) == 1 and isinstance(args[0], types.StarArgTuple) else args
        sig = restype(address, types.StarArgTuple(args))

        def codegen(context, builder, signature, llargs):
            values = []
            for i, ty in enumerate(signature.args[1]):
                value = builder.extract_value(llargs[1], i)
                values.append(context.make_array(ty)(context, builder, value).data if isinstance(ty, types.Array)
                              else value)
            result = ir.VoidType() if restype is types.void else context.get_value_type(restype)
            fn = builder.inttoptr(llargs[0], ir.FunctionType(result, [v.type for v in values]).as_pointer())
            out = builder.call(fn, values)
            return context.get_dummy_value() if restype is types.void else out

        return sig, codegen

    return call


#: ``call_void(address, *args)``: a ``void`` C function.
call_void = caller(types.void)
#: ``call_int64(address, *args)``: a C function returning an int64 (the step kernels' status).
call_int64 = caller(types.int64)
