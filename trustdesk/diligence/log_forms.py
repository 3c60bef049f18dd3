"""Query forms of the transparency log endpoints and the buyer's earlier-checkpoint field."""

from __future__ import annotations

from django import forms

# A tree of 2^63 leaves is beyond any instance; the bound keeps the integers in a bigint.
MAX_SIZE = 2**62


class InclusionProofForm(forms.Form):
    index = forms.IntegerField(min_value=0, max_value=MAX_SIZE)
    size = forms.IntegerField(min_value=1, max_value=MAX_SIZE)

    def clean(self):
        data = super().clean()
        if "index" in data and "size" in data and data["index"] >= data["size"]:
            raise forms.ValidationError(
                f"index {data['index']} is not in a tree of size {data['size']}: "
                "the index must be below the size."
            )
        return data


class ConsistencyProofForm(forms.Form):
    """`from` is a Python keyword, so the fields are added by name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = forms.IntegerField(min_value=1, max_value=MAX_SIZE)
        self.fields["to"] = forms.IntegerField(min_value=1, max_value=MAX_SIZE)

    def clean(self):
        data = super().clean()
        if "from" in data and "to" in data and data["from"] > data["to"]:
            raise forms.ValidationError(
                f"from {data['from']} is larger than to {data['to']}: a consistency proof runs "
                "from an earlier (smaller) tree to a later one."
            )
        return data


class SinceCheckpointForm(forms.Form):
    """The tree size of the checkpoint in a bundle the buyer already holds."""

    since = forms.IntegerField(
        label="Tree size of your previous bundle's checkpoint",
        required=False,
        min_value=1,
        max_value=MAX_SIZE,
        help_text="The second line of checkpoint.txt in the bundle you kept. The new bundle then "
        "carries a consistency proof from it.",
    )


def form_errors(form: forms.Form) -> list[str]:
    """Every problem of a bound form as 'field: message' (or the message alone)."""
    problems = []
    for field, errors in form.errors.items():
        for error in errors:
            problems.append(error if field == "__all__" else f"{field}: {error}")
    return problems
