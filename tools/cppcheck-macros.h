/* Macros of system headers that cppcheck does not read (it skips system includes), so that
 * `make lint` can follow the code that uses them. */
#define json_array_foreach(array, index, value)                                                    \
    for (index = 0; index < json_array_size(array) && (value = json_array_get(array, index));      \
         index++)
#define json_object_foreach(object, key, value)                                                    \
    for (key = json_object_iter_key(json_object_iter(object)); key && (value = NULL, 1); key = NULL)
