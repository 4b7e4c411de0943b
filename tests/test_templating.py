"""Template rendering rules shared by web and email_client."""

import pytest

from common.templating import TemplateError, TemplateRenderError, compile_template, render_message

CONTACT = {"email": "zoe@example.com", "name": "Zoë Ng", "first_name": "Zoë", "last_name": "",
           "attributes": {"city": "Oslo", "plan": ""}}


def render(html: str, contact=CONTACT) -> str:
    return render_message(compile_template("Subject", html), contact).html


def test_fields_and_attributes_render():
    assert render("{{ first_name }} {{ attributes.city }} {{ city }}") == "Zoë Oslo Oslo"


def test_missing_value_fails_when_output():
    for html in ("{{ last_name }}", "{{ plan }}", "{{ attributes.country }}", "{% for x in country %}{% endfor %}"):
        with pytest.raises(TemplateRenderError, match="the contact has no such value"):
            render(html)


def test_missing_value_can_be_tested():
    html = "{% if country %}in {{ country }}{% else %}nowhere{% endif %} {{ last_name | default('-') }}"
    assert render(html) == "nowhere -"
    assert render("{% if city %}in {{ city }}{% endif %}") == "in Oslo"


def test_html_escaped_text_not():
    contact = {**CONTACT, "first_name": "<b>Zoë</b>"}
    message = render_message(compile_template("Hi {{ first_name }}", "{{ first_name }}", "{{ first_name }}"), contact)
    assert message.html == "&lt;b&gt;Zoë&lt;/b&gt;"
    assert message.subject == "Hi <b>Zoë</b>"
    assert message.text == "<b>Zoë</b>"


def test_sandbox_blocks_python_internals():
    with pytest.raises(TemplateRenderError, match="not allowed"):
        render("{{ ''.__class__.__mro__ }}")


def test_syntax_error_names_part_and_line():
    with pytest.raises(TemplateError) as raised:
        compile_template("ok", "<p>\n\n{% if %}</p>")
    assert raised.value.part == "html"
    assert raised.value.line == 3
