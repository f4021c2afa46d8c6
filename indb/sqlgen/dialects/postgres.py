"""PostgreSQL: the first target; deployed scoring functions run here."""

from indb.sqlgen.dialects.base import Target

TARGET = Target(
    "postgres",
    float_type_short="float8",
    cast_operator=True,
    # an unknown-typed literal beside a float8 column resolves to float8 > float8
    literal_takes_column_type=True,
    # float8 overflow, exp/ln/sqrt domain errors and x/0 raise "value out of range" etc.
    float_errors_raise=True,
    strict_max="float8larger",
    # width_bucket(x, ARRAY[t, 'NaN']) sorts NaN last, as the btree does
    bucket_lookup=True,
    # the bison parser grows its stack to 10,000 states; max_stack_depth guards recursion
    max_depth=None,
    # "target lists can have at most 1664 entries"
    max_columns=1664,
    # no error function: casting a non-numeric text to float8 raises, with the text
    raise_by_cast=True,
    merges_subqueries=True,
    # jit = on by default: LLVM takes seconds to minutes over a tree ensemble, per process
    has_jit=True,
    # compile --table's script creates pg_temp.indb_fail (refused in read-only transactions)
    temp_fail_function=True,
)
